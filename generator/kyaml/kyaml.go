// Package kyaml serializes Kubernetes API objects and component configurations
// (KubeletConfiguration, KubeProxyConfiguration, Deployments …) to YAML without the
// zero-value noise plain sigs.k8s.io/yaml output carries: no "creationTimestamp: null",
// no "status: {}", no "syncFrequency: 0s", no empty nested structs.
//
// The rule is the one that keeps decoding exact: a field is left out when leaving it out
// decodes to the same Go value. That holds for every zero non-pointer field and every nil
// pointer, map, slice or interface. A non-nil pointer is always kept, even to a zero value
// (ptr.To(false) stays "false", &SecurityContext{} stays "{}"), because for pointers absent
// and zero differ. Keys come out sorted, so output is deterministic.
package kyaml

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// Marshal returns v as YAML with zero-valued fields omitted (see the package comment).
func Marshal(v any) ([]byte, error) {
	tree, _, err := clean(reflect.ValueOf(v))
	if err != nil {
		return nil, err
	}
	if tree == nil {
		tree = map[string]any{}
	}
	if direct(tree) {
		return yamlv2.Marshal(tree)
	}
	return yaml.Marshal(tree)
}

// direct reports whether yaml.v2 writes tree exactly as sigs.k8s.io/yaml does: that
// marshals to JSON, parses the JSON with yaml.v2 and marshals the result, which for a
// tree of string-keyed maps, slices, valid UTF-8 strings, booleans and integers is the
// tree itself (yaml.v2 reads a JSON integer as the integer it is). leaf's json.Numbers
// that are integers become integers here. Anything else takes the JSON round trip:
// invalid UTF-8, which JSON replaces, and every float (JSON writes 1e6 as 1000000, which
// yaml.v2 reads back as an integer, while it writes the float itself as 1e+06). A
// 1,000-node render marshals 2,000 component configs (TestDirectEqualsRoundTrip holds
// the two paths equal).
func direct(tree any) bool {
	switch t := tree.(type) {
	case nil, bool, int64, uint64:
		return true
	case string:
		return utf8.ValidString(t)
	case map[string]any:
		for k, v := range t {
			x, ok := directValue(v)
			if !ok || !utf8.ValidString(k) {
				return false
			}
			t[k] = x
		}
		return true
	case []any:
		for i, v := range t {
			x, ok := directValue(v)
			if !ok {
				return false
			}
			t[i] = x
		}
		return true
	}
	return false
}

// directValue is a map value or slice element as direct hands it to yaml.v2: a
// json.Number that is an integer as the int64 (else uint64) yaml.v2 reads it as, anything
// else as it is; false where direct refuses it (any other number included).
func directValue(v any) (any, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return v, direct(v)
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u, true
	}
	return nil, false
}

// MarshalDocuments marshals each object and joins them as a multi-document YAML stream
// ("---" between documents).
func MarshalDocuments(objs ...any) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		y, err := Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("document %d (%T): %w", i+1, o, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// clean converts v to a tree of map[string]any, []any and scalars, following
// encoding/json's field naming. empty reports that v may be omitted where it is a field
// or map value's parent decides; tree is still v's representation for contexts (slice
// elements, map values) where it must be kept.
func clean(v reflect.Value) (tree any, empty bool, err error) {
	if !v.IsValid() {
		return nil, true, nil
	}
	if isMarshaler(v.Type()) {
		return leaf(v)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, true, nil
		}
		tree, _, err := clean(v.Elem())
		return tree, false, err
	case reflect.Struct:
		m := map[string]any{}
		if err := cleanStruct(v, m); err != nil {
			return nil, false, err
		}
		return m, len(m) == 0, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, false, fmt.Errorf("map key type %s is not a string", v.Type().Key())
		}
		m := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			t, _, err := clean(iter.Value())
			if err != nil {
				return nil, false, fmt.Errorf("key %q: %w", iter.Key().String(), err)
			}
			m[iter.Key().String()] = t
		}
		return m, len(m) == 0, nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return leaf(v) // []byte: base64, as encoding/json does
		}
		s := make([]any, v.Len())
		for i := range s {
			t, _, err := clean(v.Index(i))
			if err != nil {
				return nil, false, fmt.Errorf("[%d]: %w", i, err)
			}
			s[i] = t
		}
		return s, len(s) == 0, nil
	// Scalars as their basic types (a named string type is a string), so that direct
	// can tell them; a float32 stays one, as encoding/json writes it at its precision.
	case reflect.Bool:
		return v.Bool(), v.IsZero(), nil
	case reflect.String:
		return v.String(), v.IsZero(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), v.IsZero(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint(), v.IsZero(), nil
	case reflect.Float32:
		return float32(v.Float()), v.IsZero(), nil
	case reflect.Float64:
		return v.Float(), v.IsZero(), nil
	default:
		return nil, false, fmt.Errorf("cannot serialize a %s", v.Type())
	}
}

// cleanStruct adds v's fields to m under their JSON names; embedded structs without a
// name ("json:\",inline\"" in Kubernetes types) are flattened as encoding/json does.
func cleanStruct(v reflect.Value, m map[string]any) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv, ft = fv.Elem(), ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !isMarshaler(ft) {
				if err := cleanStruct(fv, m); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		tree, empty, err := clean(fv)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !empty {
			m[name] = tree
		}
	}
	return nil
}

func isMarshaler(t reflect.Type) bool {
	for _, x := range []reflect.Type{t, reflect.PointerTo(t)} {
		if x.Implements(jsonMarshaler) || x.Implements(textMarshaler) {
			return true
		}
	}
	return false
}

// leaf serializes a value with its own JSON encoding (metav1.Time, metav1.Duration,
// resource.Quantity, intstr.IntOrString …). Zero values are omittable.
func leaf(v reflect.Value) (any, bool, error) {
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return nil, true, nil
	}
	empty := v.Kind() != reflect.Pointer && v.IsZero()
	// Copy into an addressable value so pointer-receiver marshalers apply.
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	j, err := json.Marshal(p.Interface())
	if err != nil {
		return nil, false, err
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return nil, false, err
	}
	return out, empty, nil
}
