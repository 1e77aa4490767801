package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/parallel"
)

// SumsName is the bundle's manifest: `sha256sum -c` compatible, one line per file.
const SumsName = "SHA256SUMS"

// Sums renders SHA256SUMS for files ("<hex sha256>  <path>\n" per file, in the order
// given: callers pass files sorted by path). This is the one place the format is written.
func Sums(files []bundle.File) []byte {
	out, _, _ := sumsWith(files, nil)
	return out
}

// sumsWith is Sums where the sums of pending files come from known (the SHA256SUMS on
// disk); it reports false when one is missing there. It also returns each file's sum by
// path, which the writer reuses to find identical files.
func sumsWith(files []bundle.File, known map[string][sha256.Size]byte) ([]byte, map[string][sha256.Size]byte, bool) {
	hashes := make([][sha256.Size]byte, len(files))
	ok := true
	parallel.DoN(len(files), ioWorkers(), func(i int) error {
		if files[i].Pending == "" {
			hashes[i] = sha256.Sum256(files[i].Data)
		} else if h, found := known[files[i].Path]; found {
			hashes[i] = h
		} else {
			ok = false
		}
		return nil
	})
	if !ok {
		return nil, nil, false
	}
	out := make([]byte, 0, len(files)*(64+2+48))
	byPath := make(map[string][sha256.Size]byte, len(files))
	for i, f := range files {
		out = hex.AppendEncode(out, hashes[i][:])
		out = append(out, "  "...)
		out = append(out, f.Path...)
		out = append(out, '\n')
		byPath[f.Path] = hashes[i]
	}
	return out, byPath, true
}

// WithSums returns a sorted copy of files with the SHA256SUMS the writer keeps beside
// them in dir: the complete bundle as it would be on disk. Files whose content is pending
// take their sums from the SHA256SUMS in dir.
func WithSums(files []bundle.File, dir string) []bundle.File {
	out, _, err := prepare(files, diskSums(dir, files))
	if err != nil {
		// Invalid paths are refused by Write; here the list is only compared.
		out = append(append([]bundle.File(nil), files...), bundle.File{Path: SumsName, Mode: bundle.ModePublic, Data: Sums(files)})
		bundle.Sort(out)
	}
	return out
}

// SumEntry is one line of SHA256SUMS.
type SumEntry struct {
	Line int
	Sum  [sha256.Size]byte
	Path string
}

// SumError is a malformed line of SHA256SUMS; Msg says what is wrong, line number first.
type SumError struct {
	Line int
	Msg  string
}

func (e SumError) Error() string { return e.Msg }

// ParseSums reads SHA256SUMS: its entries in order, and every malformed line.
func ParseSums(data []byte) ([]SumEntry, []SumError) {
	var entries []SumEntry
	var errs []SumError
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		line, ok := strings.CutSuffix(line, "\n")
		if !ok || len(line) < 67 || line[64:66] != "  " {
			errs = append(errs, SumError{Line: i + 1, Msg: fmt.Sprintf(`line %d is not "<sha256>  <path>"`, i+1)})
			continue
		}
		e := SumEntry{Line: i + 1, Path: line[66:]}
		if n, err := hex.Decode(e.Sum[:], []byte(line[:64])); err != nil || n != sha256.Size {
			errs = append(errs, SumError{Line: i + 1, Msg: fmt.Sprintf("line %d: %q is not a hexadecimal SHA-256 sum", i+1, line[:64])})
			continue
		}
		entries = append(entries, e)
	}
	return entries, errs
}

// diskSums reads the SHA256SUMS in dir by path, when files has pending content (nil
// otherwise, or when there is none).
func diskSums(dir string, files []bundle.File) map[string][sha256.Size]byte {
	if !slices.ContainsFunc(files, func(f bundle.File) bool { return f.Pending != "" }) {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, SumsName))
	if err != nil {
		return nil
	}
	entries, _ := ParseSums(data)
	out := make(map[string][sha256.Size]byte, len(entries))
	for _, e := range entries {
		out[e.Path] = e.Sum
	}
	return out
}
