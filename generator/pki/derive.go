// Package pki issues the cluster's keys, tokens and X.509 certificates deterministically:
// everything is derived from one root secret plus stable labels, so rendering the same
// spec twice yields byte-identical files.
//
// Keys are ECDSA P-256 scalars taken from HKDF-SHA256 over the root secret; signatures
// use RFC 6979 (deterministic nonces); serial numbers are hashes of an identity and a
// generation; validity periods are supplied by the caller. Certificates are issued by
// cfssl's local signer (github.com/cloudflare/cfssl/signer/local) with fixed signing
// profiles, but no cfssl type appears in this package's API.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
)

// MinSecretLen is the minimum length in bytes of a root secret.
const MinSecretLen = 32

// Fixed domain-separation prefixes: the HKDF salts of keys and tokens and the hash prefix
// of serials. Changing any of them changes every artefact ever rendered, so they are
// versioned and must never be edited.
const (
	keySalt    = "scratchgen/v1 key"
	tokenSalt  = "scratchgen/v1 token"
	serialSalt = "scratchgen/v1 serial"
)

// maxKeyAttempts bounds DeriveKey's re-derivation loop. A uniformly random 32-byte
// string is rejected by ParseRawPrivateKey with probability < 2^-32, so reaching the
// bound means the derivation function is broken, not unlucky.
const maxKeyAttempts = 16

// keyMaterial returns the 32 bytes tried as a P-256 scalar for one attempt. It is a
// variable only so that tests can force the rejection path of DeriveKey.
var keyMaterial = func(secret []byte, info string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, []byte(keySalt), info, 32)
}

func checkSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("pki: root secret is %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	return nil
}

// keyInfo is the HKDF info string for attempt n of label: the label itself first, then
// label NUL decimal(n). Labels are expected to be printable, so no two (label, attempt)
// pairs share an info string in practice.
func keyInfo(label string, attempt int) string {
	if attempt == 0 {
		return label
	}
	return label + "\x00" + strconv.Itoa(attempt)
}

// DeriveKey derives the P-256 private key named label from the root secret
// (HKDF-SHA256, fixed salt, info = label; re-derived with a counter appended to the
// label in the negligible case that the 32 bytes are zero or not below the group order).
func DeriveKey(secret []byte, label string) (*ecdsa.PrivateKey, error) {
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	if label == "" {
		return nil, errors.New("pki: empty key label")
	}
	for attempt := 0; attempt < maxKeyAttempts; attempt++ {
		b, err := keyMaterial(secret, keyInfo(label, attempt))
		if err != nil {
			return nil, fmt.Errorf("pki: derive key %q: %w", label, err)
		}
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
		if err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("pki: derive key %q: no valid scalar after %d attempts", label, maxKeyAttempts)
}

// TokenLen is the length of tokens returned by DeriveToken.
const TokenLen = 32

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// DeriveToken derives a TokenLen-character token over [A-Za-z0-9] named label from the
// root secret, by rejection sampling over an HKDF-SHA256 stream (no modulo bias).
// It panics if secret is shorter than MinSecretLen or label is empty, which are
// programming errors in the caller.
func DeriveToken(secret []byte, label string) string {
	if err := checkSecret(secret); err != nil {
		panic(err)
	}
	if label == "" {
		panic("pki: empty token label")
	}
	// 62*4 = 248: bytes below it map uniformly onto the alphabet, the other 8 of 256
	// values are skipped. HKDF-Expand output of length n is a prefix of any longer
	// output, so a retry with the maximum length only extends the same stream.
	const limit = byte(4 * len(tokenAlphabet))
	for _, n := range []int{2 * TokenLen, 255 * sha256.Size} {
		stream, err := hkdf.Key(sha256.New, secret, []byte(tokenSalt), label, n)
		if err != nil {
			panic(fmt.Sprintf("pki: derive token %q: %v", label, err))
		}
		out := make([]byte, 0, TokenLen)
		for _, c := range stream {
			if c >= limit {
				continue
			}
			out = append(out, tokenAlphabet[int(c)%len(tokenAlphabet)])
			if len(out) == TokenLen {
				return string(out)
			}
		}
	}
	// 8160 bytes yielding fewer than 32 accepted ones has probability far below 2^-1000.
	panic("pki: derive token: HKDF stream exhausted")
}

// DeriveSerial returns the certificate serial number for generation of identity:
// the first 16 bytes of SHA-256 over a fixed prefix, identity and generation, with the
// top bit cleared and the next bit set, i.e. a positive 127-bit integer that always
// encodes as exactly 16 DER octets (RFC 5280: positive, at most 20 octets).
func DeriveSerial(identity string, generation int) *big.Int {
	h := sha256.New()
	io.WriteString(h, serialSalt)
	h.Write([]byte{0})
	io.WriteString(h, identity)
	h.Write([]byte{0})
	io.WriteString(h, strconv.Itoa(generation))
	b := h.Sum(nil)[:16]
	b[0] = b[0]&0x7f | 0x40
	return new(big.Int).SetBytes(b)
}

// deterministicSigner is a crypto.Signer whose Sign ignores its random source.
type deterministicSigner struct {
	key *ecdsa.PrivateKey
}

// DeterministicSigner returns a crypto.Signer for key whose Sign ignores the random
// source it is given and signs per RFC 6979, so equal digests give equal signatures.
func DeterministicSigner(key *ecdsa.PrivateKey) crypto.Signer {
	return deterministicSigner{key: key}
}

// Public returns the public half of the key.
func (s deterministicSigner) Public() crypto.PublicKey { return s.key.Public() }

// Sign signs digest with RFC 6979 nonces: (*ecdsa.PrivateKey).Sign with a nil random
// source is deterministic since Go 1.26.
func (s deterministicSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.key.Sign(nil, digest, opts)
}
