package spec

import (
	_ "embed"
	"strings"
)

//go:embed example.yaml
var example string

// Example returns the commented example spec printed by `scratchgen init`, for a cluster
// named name ("demo" when empty).
func Example(name string) string {
	if name == "" {
		return example
	}
	return strings.Replace(example, "  name: demo ", "  name: "+name+" ", 1)
}
