package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/scratchgen/scratchgen/generator/rootsecret"
)

// runSecret dispatches `secret encrypt`.
func runSecret(r *runner, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if done, err := r.parse("secret", args); done || err != nil {
			return err
		}
		return &ExitError{Code: 1, Msg: "secret needs a subcommand: encrypt; run `scratchgen secret --help`"}
	}
	if args[0] != "encrypt" {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("secret: unknown subcommand %q (want encrypt); run `scratchgen secret --help`", args[0])}
	}
	return runSecretEncrypt(r, args[1:])
}

// runSecretEncrypt writes the root secret age-encrypted to recipients, so that the
// encrypted file can be committed beside the spec; it removes nothing.
func runSecretEncrypt(r *runner, args []string) error {
	f := r.addSpecFlags(true)
	recipients := r.flags.StringArray("recipient", nil, "an age recipient (age1…) that may decrypt the secret; repeatable")
	recipientsFile := r.flags.String("recipients-file", "", "a file of age recipients, one per line")
	out := r.flags.StringP("output", "o", "", "the encrypted file (default: <spec stem>.secret.age beside the spec)")
	force := r.flags.Bool("force", false, "replace an existing encrypted file")
	if done, err := r.parse("secret", args); done || err != nil {
		return err
	}
	if err := r.noArgs("secret encrypt"); err != nil {
		return err
	}
	lines := append([]string(nil), *recipients...)
	if *recipientsFile != "" {
		data, err := readBounded(*recipientsFile, "recipients file", "", rootsecret.MaxFileSize)
		if err != nil {
			return err
		}
		lines = append(lines, strings.Split(string(data), "\n")...)
	}
	rcpts, err := rootsecret.ParseRecipients(lines)
	if err != nil {
		return &ExitError{Code: 1, Msg: "secret encrypt: " + err.Error()}
	}
	f.defaults()
	if *out == "" {
		*out = f.stem() + ".secret" + ageSuffix
	}
	src, err := r.findSecret(f)
	if err != nil {
		return err
	}
	if src == nil {
		return fmt.Errorf("no root secret to encrypt (looked at %s); render once to create one, or pass --secret", secretLooked(f))
	}
	if _, err := os.Lstat(*out); err == nil && !*force {
		return fmt.Errorf("%s exists; pass --force to replace it", *out)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", *out, err)
	}
	data, err := rootsecret.Encrypt(src.value, rcpts)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	fmt.Fprintf(r.io.Out, "wrote %s: the root secret from %s, age-encrypted to %d recipient(s); commit it, and keep or delete the plaintext yourself (nothing was removed)\n", *out, src.from, len(rcpts))
	return nil
}
