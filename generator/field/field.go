// Package field reports spec problems: each error names the field path
// (spec.nodes[2].address), its line and column where known, what is wrong and what to do.
package field

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Path is a dotted field path such as "spec.nodes[2].address".
type Path string

// Child returns p.name.
func (p Path) Child(name string) Path {
	if p == "" {
		return Path(name)
	}
	return Path(string(p) + "." + name)
}

// Index returns p[i].
func (p Path) Index(i int) Path { return Path(string(p) + "[" + strconv.Itoa(i) + "]") }

// Key returns p[key] for map entries.
func (p Path) Key(k string) Path { return Path(string(p) + "[" + strconv.Quote(k) + "]") }

// Position is a 1-based line and column in the spec file; zero when unknown.
type Position struct{ Line, Column int }

// Error is one problem with the spec.
type Error struct {
	Path Path
	Pos  Position
	// Msg says what is wrong and what to do.
	Msg string
	// Warning marks a problem that does not stop rendering.
	Warning bool
	// Input names the file the problem is in: "" for the spec, InputLock for the lock.
	Input string
}

// InputLock marks problems in the lock file.
const InputLock = "lock"

// Error formats "line:col: path: msg".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", e.Pos.Line, e.Pos.Column)
	}
	if e.Warning {
		b.WriteString("warning: ")
	}
	if e.Path != "" {
		b.WriteString(string(e.Path))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// List collects problems; its zero value is ready to use.
type List []*Error

// Add appends an error at path.
func (l *List) Add(path Path, format string, args ...any) {
	*l = append(*l, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Warn appends a warning at path.
func (l *List) Warn(path Path, format string, args ...any) {
	*l = append(*l, &Error{Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// In returns the entries of one input.
func (l List) In(input string) List {
	var out List
	for _, e := range l {
		if e.Input == input {
			out = append(out, e)
		}
	}
	return out
}

// Errors returns the entries that are not warnings.
func (l List) Errors() List {
	var out List
	for _, e := range l {
		if !e.Warning {
			out = append(out, e)
		}
	}
	return out
}

// Warnings returns the warnings.
func (l List) Warnings() List {
	var out List
	for _, e := range l {
		if e.Warning {
			out = append(out, e)
		}
	}
	return out
}

// AddIn appends an error about a field of another input (InputLock).
func (l *List) AddIn(input string, path Path, format string, args ...any) {
	*l = append(*l, &Error{Input: input, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Locate fills in positions of the spec's problems from a path → position index,
// falling back to the nearest parent path that has one.
func (l List) Locate(pos map[Path]Position) { l.LocateIn("", pos) }

// LocateIn is Locate for the problems of one input.
func (l List) LocateIn(input string, pos map[Path]Position) {
	for _, e := range l {
		if e.Pos.Line > 0 || e.Input != input {
			continue
		}
		for p := e.Path; p != ""; p = parent(p) {
			if q, ok := pos[p]; ok {
				e.Pos = q
				break
			}
		}
	}
}

func parent(p Path) Path {
	s := string(p)
	i := strings.LastIndexAny(s, ".[")
	if i <= 0 {
		return ""
	}
	return Path(s[:i])
}

// Sorted returns the list ordered by input (the spec first), position, then path
// (stable for equal keys).
func (l List) Sorted() List {
	out := append(List(nil), l...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Input != b.Input {
			return a.Input < b.Input
		}
		if a.Pos.Line != b.Pos.Line {
			if a.Pos.Line == 0 || b.Pos.Line == 0 {
				return b.Pos.Line == 0
			}
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		return a.Path < b.Path
	})
	return out
}

// Format writes every entry on its own line, sorted, each prefixed with file (the spec's
// name; problems of another input are prefixed with that input's name).
func (l List) Format(file string) string { return l.FormatIn(map[string]string{"": file}) }

// FormatIn is Format with a file name per input ("" the spec, InputLock the lock).
func (l List) FormatIn(files map[string]string) string {
	var b strings.Builder
	for _, e := range l.Sorted() {
		file, ok := files[e.Input]
		if !ok {
			file = e.Input
		}
		if file != "" {
			b.WriteString(file)
			if e.Pos.Line > 0 {
				b.WriteString(":")
			} else {
				b.WriteString(": ")
			}
		}
		b.WriteString(e.Error())
		b.WriteString("\n")
	}
	return b.String()
}
