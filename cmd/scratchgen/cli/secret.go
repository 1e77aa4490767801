package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
	"github.com/scratchgen/scratchgen/generator/rootsecret"
)

// Environment variables the secret may come from.
const (
	envSecret      = "SCRATCHGEN_SECRET"
	envAgeIdentity = "SCRATCHGEN_AGE_IDENTITY"
)

// secretSource is the root secret and where it came from (for messages; never the value).
type secretSource struct {
	value []byte
	from  string
}

// getenv reads the environment through Env (tests replace it).
func (r *runner) getenv(k string) string {
	if r.env.Getenv == nil {
		return ""
	}
	return r.env.Getenv(k)
}

// ageSuffix marks an age-encrypted secret file.
const ageSuffix = ".age"

// findSecret finds the root secret, in this order: --secret (a file, "-" for standard
// input, or an age-encrypted *.age file), $SCRATCHGEN_SECRET (64 hex digits), the
// plaintext <stem>.secret, the age-encrypted <stem>.secret.age. It returns nil when none
// exists, and an error for a source that exists but cannot be used.
func (r *runner) findSecret(f *specFlags) (*secretSource, error) {
	switch {
	case f.secret == "-":
		data, err := readAllBounded(r.io.In, "standard input", "root secret", rootsecret.MaxFileSize)
		if err != nil {
			return nil, err
		}
		return parsedSecret(data, "standard input")
	case f.secret != "":
		if _, err := os.Lstat(f.secret); errors.Is(err, fs.ErrNotExist) {
			return nil, nil // render creates it there on a first render
		}
		return r.secretFile(f, f.secret)
	case r.getenv(envSecret) != "":
		return parsedSecret([]byte(r.getenv(envSecret)), "$"+envSecret)
	}
	for _, p := range []string{f.stem() + ".secret", f.stem() + ".secret" + ageSuffix} {
		if _, err := os.Lstat(p); err == nil {
			return r.secretFile(f, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading root secret %s: %w", p, err)
		}
	}
	return nil, nil
}

func parsedSecret(data []byte, from string) (*secretSource, error) {
	s, err := rootsecret.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("the root secret from %s %v; restore it from your backup (its content is not shown)", from, err)
	}
	return &secretSource{value: s, from: from}, nil
}

// secretFile reads a plaintext or an age-encrypted secret file. A plaintext file that
// group or others may read is refused, as ssh refuses such a private key.
func (r *runner) secretFile(f *specFlags, path string) (*secretSource, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("reading root secret %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("root secret %s is not a regular file (%v); pass the file itself with --secret", path, st.Mode().Type())
	}
	data, err := readBounded(path, "root secret", "", rootsecret.MaxFileSize)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ageSuffix) {
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("root secret %s is readable by group or others (mode %04o); it holds the keys to the whole cluster: run `chmod 600 %s` and check who has read it", path, perm, path)
		}
		return parsedSecret(data, path)
	}
	idPath := f.ageIdentity
	var idData []byte
	switch env := r.getenv(envAgeIdentity); {
	case idPath != "":
	case strings.HasPrefix(strings.TrimSpace(env), "AGE-SECRET-KEY-"):
		idData, idPath = []byte(env), "$"+envAgeIdentity
	case env != "":
		idPath = env
	default:
		return nil, fmt.Errorf("root secret %s is age-encrypted: pass --age-identity FILE or set $%s to decrypt it", path, envAgeIdentity)
	}
	if idData == nil {
		if idData, err = readBounded(idPath, "age identity", "pass the identity file age-keygen wrote", rootsecret.MaxFileSize); err != nil {
			return nil, err
		}
	}
	ids, err := rootsecret.ParseIdentities(idData)
	if err != nil {
		return nil, fmt.Errorf("age identity %s: %w", idPath, err)
	}
	s, err := rootsecret.Decrypt(data, ids)
	if err != nil {
		return nil, fmt.Errorf("root secret %s %v", path, err)
	}
	return &secretSource{value: s, from: path}, nil
}

// secretLooked says where findSecret looked, for messages.
func secretLooked(f *specFlags) string {
	if f.secret != "" {
		return f.secret
	}
	return fmt.Sprintf("$%s, %s.secret, %s.secret%s", envSecret, f.stem(), f.stem(), ageSuffix)
}

// newPKIHint is the deliberate way out of a missing or wrong secret.
const newPKIHint = "or pass --new-pki to start a new PKI on purpose (every key, certificate and token is replaced; every node must be re-provisioned and every kubeconfig replaced)"

// checkSecret refuses a root secret that cannot be the one the lock's PKI was issued
// from: a missing secret when the lock records issued certificates, or one whose verifier
// differs from the lock's. A lock written before verifiers existed is checked against
// the CA certificate of the bundle on disk, when there is one.
func checkSecret(f *specFlags, lk *lock.Lock, src *secretSource, cluster, bundleDir string) error {
	if !lk.Issued() {
		return nil
	}
	if src == nil {
		return fmt.Errorf("%s records an issued PKI (%d certificates) but no root secret was found (looked at %s): rendering without it would replace every key and token and lock you out of the running cluster; restore the secret from your backup (as a file, with --secret -, $%s or an age-encrypted %s.secret%s), %s",
			f.lock, len(lk.Certificates), secretLooked(f), envSecret, f.stem(), ageSuffix, newPKIHint)
	}
	wrong := fmt.Errorf("the root secret from %s is not the one %s was issued from: rendering with it would replace every key and token; restore the right secret from your backup, %s",
		src.from, f.lock, newPKIHint)
	if lk.RootSecret != nil {
		if rootsecret.Verifier(src.value, cluster) != lk.RootSecret.Verifier {
			return wrong
		}
		return nil
	}
	// An older lock without a verifier: the cluster CA in the bundle on disk tells (its
	// key is derived from the secret). Without a bundle there is nothing to compare with;
	// the render then records the verifier.
	entries, _ := os.ReadDir(filepath.Join(bundleDir, "nodes"))
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(bundleDir, "nodes", e.Name(), "rootfs", paths.CACert))
		if err != nil {
			continue
		}
		if cert, err := pki.ParseCertPEM(data); err == nil {
			if !credentials.SecretMatchesCA(cluster, lk, src.value, cert) {
				return wrong
			}
			return nil
		}
	}
	return nil
}
