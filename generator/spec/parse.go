package spec

import (
	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/strict"
)

// MaxSize bounds the spec file; a cluster spec is a few kilobytes.
const MaxSize = 4 << 20

// Document is a parsed spec with the position of every field, for error messages.
type Document struct {
	Cluster   Cluster
	Positions map[field.Path]field.Position
}

// Parse decodes a spec strictly: unknown or duplicated fields, wrong types and a second
// YAML document are all reported, each with its path and line:column. Parse never panics.
// It returns nil when the file is not YAML at all.
func Parse(data []byte) (*Document, field.List) {
	doc := &Document{}
	pos, errs := strict.Decode(data, &doc.Cluster, strict.Options{
		What: "spec", MaxSize: MaxSize, Empty: "the file is empty; start from `scratchgen init`",
		Second: "a second YAML document follows the Cluster; a spec file holds exactly one",
	})
	if pos == nil {
		return nil, errs
	}
	doc.Positions = pos
	return doc, errs
}
