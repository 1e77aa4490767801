package nodeconfig

import "strings"

// unit is a systemd unit file (or drop-in) as ordered sections of ordered entries.
type unit []section

type section struct {
	name    string
	entries []entry
}

// entry is one Key=Value line. A command given as several args is written one argument
// per line with backslash-newline continuations (readable long ExecStart lines).
type entry struct {
	key  string
	args []string
}

// kv is Key=value; several values are space-separated on one line (Wants=a b).
func kv(key string, values ...string) entry {
	return entry{key: key, args: []string{strings.Join(values, " ")}}
}

// command is Key=argv[0] \ argv[1] \ … for ExecStart and friends.
func command(key string, argv ...string) entry { return entry{key: key, args: argv} }

func (u unit) bytes() []byte {
	var b strings.Builder
	b.WriteString("# " + header + "\n")
	for _, s := range u {
		b.WriteString("\n")
		b.WriteString("[" + s.name + "]\n")
		for _, e := range s.entries {
			b.WriteString(e.key + "=" + strings.Join(e.args, " \\\n    ") + "\n")
		}
	}
	return []byte(b.String())
}
