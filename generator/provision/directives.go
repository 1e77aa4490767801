package provision

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Directives flattens a view into "path: value" lines (sorted) for everything it says other than
// the files it writes and the units it enables (those are compared as files and units):
// users, commands, links, directories, config merges, remote sources, kernel arguments,
// header comments. Two views that write the same files and enable the same units differ
// only in their directives, so this is how checks and reviews name "user-data gains a
// command" instead of "user-data changed".
func Directives(name string, data []byte) ([]string, error) {
	var doc any
	switch name {
	case IgnitionFile:
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, err
		}
	case ButaneFile, UserDataFile:
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s is not a provisioning view", name)
	}
	return directivesOf(data, doc), nil
}

// directivesOf is Directives of view data, doc being data decoded.
func directivesOf(data []byte, doc any) []string {
	var out []string
	for i, line := range headerLines(data) {
		if i > 0 || line != "#cloud-config" { // the format marker of user-data
			out = append(out, "comment: "+short(line))
		}
	}
	flatten("", doc, &out)
	slices.Sort(out)
	return out
}

// fileLists are the lists of files and units: their entries are compared as files and
// units, so only their keys beyond those are directives.
var fileLists = map[string][]string{
	"storage.files": {"path", "mode", "overwrite", "contents", "user", "group"},
	"write_files":   {"path", "permissions", "owner", "encoding", "content", "defer"},
	"systemd.units": {"name", "enabled"},
}

func flatten(prefix string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if p == "runcmd" || p == "bootcmd" {
				commands(p, e, out)
				continue
			}
			flatten(p, e, out)
		}
	case []any:
		keep, isFileList := fileLists[prefix]
		for i, e := range x {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if m, ok := e.(map[string]any); ok && isFileList {
				for k, f := range m {
					if !slices.Contains(keep, k) {
						flatten(p+"."+k, f, out)
					}
				}
				continue
			}
			flatten(p, e, out)
		}
	default:
		*out = append(*out, prefix+": "+short(fmt.Sprint(x)))
	}
}

// commands flattens runcmd and bootcmd, one line per command as a shell would read it,
// without positions: a command added anywhere is one added line.
func commands(p string, v any, out *[]string) {
	list, ok := v.([]any)
	if !ok {
		*out = append(*out, p+": "+short(fmt.Sprint(v)))
		return
	}
	for _, c := range list {
		s := fmt.Sprint(c)
		if argv, ok := c.([]any); ok {
			parts := make([]string, len(argv))
			for j, a := range argv {
				parts[j] = fmt.Sprint(a)
			}
			s = strings.Join(parts, " ")
		}
		*out = append(*out, p+": "+short(s))
	}
}

func short(s string) string {
	if len(s) > 160 {
		return s[:157] + "…"
	}
	return s
}

// DiffDirectives lists how the directives of view name differ from want to got, one
// line each: "adds runcmd: curl http://x | sh" (got has it, want does not) or "lacks …"
// (the other way round); additions first.
func DiffDirectives(name string, want, got []byte) ([]string, error) {
	w, err := Directives(name, want)
	if err != nil {
		return nil, err
	}
	g, err := Directives(name, got)
	if err != nil {
		return nil, err
	}
	return CompareDirectives(w, g), nil
}

// CompareDirectives is DiffDirectives of two views' Directives.
func CompareDirectives(w, g []string) []string {
	count := map[string]int{}
	for _, l := range w {
		count[l]++
	}
	var adds, lacks []string
	for _, l := range g {
		if count[l] > 0 {
			count[l]--
			continue
		}
		adds = append(adds, "adds "+l)
	}
	for _, l := range w {
		if count[l] > 0 {
			count[l]--
			lacks = append(lacks, "lacks "+l)
		}
	}
	return append(adds, lacks...)
}
