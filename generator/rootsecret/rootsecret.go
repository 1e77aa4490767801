// Package rootsecret handles the cluster's root secret as data: its file format (64 hex
// digits), the checks that refuse a secret that cannot be the one a cluster was issued
// from, the verifier the lock records, and age encryption (filippo.io/age) so the secret
// can be committed encrypted. Every key and token scratchgen renders is derived from the
// root secret; nothing here touches the disk or the environment.
package rootsecret

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Size is the root secret's length in bytes.
const Size = 32

// MaxFileSize bounds every input that holds a secret or an identity: a plaintext secret is
// 65 bytes, an age file a few hundred, an identity file a few kilobytes.
const MaxFileSize = 64 << 10

// Parse reads a plaintext secret: 64 hexadecimal digits and optional surrounding
// whitespace. It refuses anything else, and a secret that is plainly not random (every
// byte the same, such as all zeros), without ever showing the content.
func Parse(data []byte) ([]byte, error) {
	s, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(s) != Size {
		return nil, errors.New("is not 64 hexadecimal digits")
	}
	if bytes.Count(s, s[:1]) == Size {
		return nil, errors.New("is not a random secret (every byte is the same, e.g. all zeros)")
	}
	return s, nil
}

// Format returns the plaintext file content of a secret: 64 hex digits and a newline.
func Format(secret []byte) []byte { return []byte(hex.EncodeToString(secret) + "\n") }

// verifierSalt is the HKDF salt of the verifier: a domain of its own, so the verifier
// shares nothing with any key or token derivation.
const verifierSalt = "scratchgen/v1 root secret verifier"

// Verifier is what the lock records to recognise the root secret of cluster: HKDF-SHA256
// of the secret under its own salt and the cluster's name, as 64 hex digits. It is a
// one-way function of a 256-bit random secret, so it reveals nothing that helps guess it.
func Verifier(secret []byte, cluster string) string {
	v, err := hkdf.Key(sha256.New, secret, []byte(verifierSalt), "scratchgen/v1/"+cluster+"/verifier", 32)
	if err != nil {
		panic(fmt.Sprintf("rootsecret: HKDF: %v", err)) // cannot fail for 32 bytes of output
	}
	return hex.EncodeToString(v)
}

// ParseRecipients reads age recipients: "age1…" strings, one per argument, or the lines
// of a recipients file (comments and blank lines skipped).
func ParseRecipients(lines []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r, err := age.ParseX25519Recipient(l)
		if err != nil {
			return nil, fmt.Errorf("%q is not an age recipient (age1…): %w", shorten(l), err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("no age recipient given; pass --recipient age1… (or --recipients-file)")
	}
	return out, nil
}

// ParseIdentities reads age identities (an identity file, or one AGE-SECRET-KEY-1… line).
func ParseIdentities(data []byte) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an age identity file: %w", errors.Unwrap(err))
	}
	return ids, nil
}

// Encrypt encrypts the secret's plaintext file content to the recipients, as
// `age -r … -o cluster.secret.age cluster.secret` would (binary age format).
func Encrypt(secret []byte, recipients []age.Recipient) ([]byte, error) {
	var b bytes.Buffer
	w, err := age.Encrypt(&b, recipients...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if _, err := w.Write(Format(secret)); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return b.Bytes(), nil
}

// Decrypt decrypts an age file (binary or armored) holding a plaintext secret file and
// parses it.
func Decrypt(data []byte, identities []age.Identity) ([]byte, error) {
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
		src = armor.NewReader(bytes.NewReader(data))
	}
	r, err := age.Decrypt(src, identities...)
	if err != nil {
		return nil, fmt.Errorf("cannot be decrypted with the given age identity: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be decrypted: %w", err)
	}
	s, err := Parse(plain)
	if err != nil {
		return nil, fmt.Errorf("decrypts to something that %w", err)
	}
	return s, nil
}

func shorten(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
