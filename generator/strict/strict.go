// Package strict decodes YAML documents into Go structs strictly, the way scratchgen
// reads every input a user edits (the spec, the lock): unknown and duplicated fields,
// wrong types, aliases and a second document are errors, each with its field path and
// line:column, and all of them are reported at once. Field names come from the structs'
// json tags; time.Time fields take RFC 3339 timestamps.
package strict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scratchgen/scratchgen/generator/field"
)

// Options name the input in messages.
type Options struct {
	// What the input is ("spec", "lock").
	What string
	// MaxSize bounds the input in bytes.
	MaxSize int
	// Empty and Second are the messages for an empty input and for a second document.
	Empty, Second string
}

// Decode decodes data into out (a pointer to a struct). It returns the position of every
// field it saw, or nil positions when data is not YAML at all (or too large), and every
// problem found.
func Decode(data []byte, out any, o Options) (map[field.Path]field.Position, field.List) {
	var errs field.List
	if len(data) > o.MaxSize {
		errs.Add("", "the %s is more than %d bytes, more than a %s can need; is this the right file?", o.What, o.MaxSize, o.What)
		return nil, errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		msg := o.Empty
		if !errors.Is(err, io.EOF) {
			msg = "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
		}
		errs.Add("", "%s", msg)
		return nil, errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs = append(errs, &field.Error{Pos: pos(&extra), Msg: o.Second})
	} else if !errors.Is(err, io.EOF) {
		errs.Add("", "not valid YAML after the first document: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	d := decoder{positions: map[field.Path]field.Position{}}
	node := &root
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	d.decode(node, reflect.ValueOf(out).Elem(), "")
	return d.positions, append(errs, d.errs...)
}

func pos(n *yaml.Node) field.Position { return field.Position{Line: n.Line, Column: n.Column} }

type decoder struct {
	positions map[field.Path]field.Position
	errs      field.List
	depth     int
}

func (d *decoder) fail(n *yaml.Node, p field.Path, format string, args ...any) {
	d.errs = append(d.errs, &field.Error{Path: p, Pos: pos(n), Msg: fmt.Sprintf(format, args...)})
}

// decode sets v from n, recording positions and reporting every mismatch.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, p field.Path) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > 64 {
		d.fail(n, p, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		d.fail(n, p, "YAML aliases are not supported in a spec; write the value out")
		return
	}
	if p != "" {
		d.positions[p] = pos(n)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leave the zero value: the field is unset
	}
	if v.Type() == timeType {
		d.decodeTime(n, v, p)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		before := len(d.errs)
		d.decode(n, e.Elem(), p)
		if len(d.errs) == before {
			v.Set(e)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, p, "expected a list, found %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), p.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, p, "expected a mapping, found %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(k, p, "map keys must be plain strings")
				continue
			}
			kp := p.Key(k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.fail(k, kp, "duplicated key %q; keep one", k.Value)
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, kp)
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, p)
	}
}

var timeType = reflect.TypeOf(time.Time{})

// decodeTime reads an RFC 3339 timestamp.
func (d *decoder) decodeTime(n *yaml.Node, v reflect.Value, p field.Path) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, p, "expected a time such as 2026-01-01T12:00:00Z, found %s", describe(n))
		return
	}
	t, err := time.Parse(time.RFC3339, n.Value)
	if err != nil {
		d.fail(n, p, "%q is not a time such as 2026-01-01T12:00:00Z (RFC 3339)", n.Value)
		return
	}
	v.Set(reflect.ValueOf(t))
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, p field.Path) bool {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, p, "expected %s, found %s", kindName(v.Kind()), describe(n))
		return false
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.fail(n, p, "expected a whole number, found %q", n.Value)
			return false
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.fail(n, p, "expected true or false, found %q", n.Value)
			return false
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		d.fail(n, p, "unsupported field type %s", v.Kind())
		return false
	}
	return true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, p field.Path) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "expected a mapping, found %s", describe(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := p.Child(k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, p, "field names must be plain strings")
			continue
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, kp, "unknown field %q; known fields here: %s", k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, kp, "field %q is given twice; keep one", k.Value)
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), kp)
	}
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	default:
		return "a string"
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}
