package livecheck

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Check names, in the order Run performs them.
const (
	CheckNodes        = "nodes"
	CheckNodeIdentity = "node-identity"
	CheckControlPlane = "control-plane"
	CheckAPIServers   = "apiservers"
	CheckEtcd         = "etcd"
	CheckDNS          = "dns"
)

// Problem is one way the cluster differs from the spec.
type Problem struct {
	// Subject names what is wrong: "node worker-1", "pod kube-system/etcd-cp-1".
	Subject string `json:"subject"`
	// What says what is wrong.
	What string `json:"what"`
	// Hint says what to do or where to look.
	Hint string `json:"hint"`
}

// String is the problem's line: "<subject>: <what is wrong>; <what to do or look at>".
func (p Problem) String() string { return p.Subject + ": " + p.What + "; " + p.Hint }

// Check is one named check and what it found.
type Check struct {
	Name string `json:"name"`
	// Summary says what was found to be right ("3 nodes Ready"); the success line lists them.
	Summary  string    `json:"summary,omitempty"`
	Problems []Problem `json:"problems"`
}

// OK reports whether the check found no problem.
func (c *Check) OK() bool { return len(c.Problems) == 0 }

func (c *Check) add(subject, what, hint string) {
	c.Problems = append(c.Problems, Problem{Subject: subject, What: what, Hint: hint})
}

// MarshalJSON writes {name, ok, summary, problems}.
func (c *Check) MarshalJSON() ([]byte, error) {
	problems := c.Problems
	if problems == nil {
		problems = []Problem{}
	}
	return json.Marshal(struct {
		Name    string    `json:"name"`
		OK      bool      `json:"ok"`
		Summary string    `json:"summary,omitempty"`
		Probs   []Problem `json:"problems"`
	}{c.Name, c.OK(), c.Summary, problems})
}

// Report is the result of Run: every check, in order.
type Report struct {
	Cluster string   `json:"cluster"`
	Checks  []*Check `json:"checks"`
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK() {
			return false
		}
	}
	return true
}

// Check returns the check named name, or nil.
func (r *Report) Check(name string) *Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Problems returns every problem, in check order.
func (r *Report) Problems() []Problem {
	var out []Problem
	for _, c := range r.Checks {
		out = append(out, c.Problems...)
	}
	return out
}

// Summary is the report's last line: what matches, or how many problems which checks found.
func (r *Report) Summary() string {
	if r.OK() {
		var parts []string
		for _, c := range r.Checks {
			if c.Summary != "" {
				parts = append(parts, c.Summary)
			}
		}
		return fmt.Sprintf("cluster %s matches the spec: %s", r.Cluster, strings.Join(parts, ", "))
	}
	var failed []string
	for _, c := range r.Checks {
		if !c.OK() {
			failed = append(failed, fmt.Sprintf("%s %d", c.Name, len(c.Problems)))
		}
	}
	return fmt.Sprintf("cluster %s does not match the spec: %d problem(s) (%s)", r.Cluster, len(r.Problems()), strings.Join(failed, ", "))
}

// WriteText writes one line per problem, then, when there is none, the summary line.
// (The summary of a failing report is the caller's to print, with its exit status.)
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, p := range r.Problems() {
		b.WriteString(p.String() + "\n")
	}
	if r.OK() {
		b.WriteString(r.Summary() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MarshalJSON writes {cluster, ok, checks: [{name, ok, summary, problems: [{subject, what, hint}]}]}.
func (r *Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Cluster string   `json:"cluster"`
		OK      bool     `json:"ok"`
		Checks  []*Check `json:"checks"`
	}{r.Cluster, r.OK(), r.Checks})
}

// WriteJSON writes the report as indented JSON (see MarshalJSON).
func (r *Report) WriteJSON(w io.Writer) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
