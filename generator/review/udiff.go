package review

import (
	"fmt"
	"strings"
)

// maxEdit bounds the edit distance the Myers search explores. Beyond it the diff falls
// back to replacing the whole differing middle, which is still a correct diff, only not
// a minimal one; it keeps memory at O(maxEdit²) for pathological inputs.
const maxEdit = 2000

// contextLines is the unified diff context, as diff -u.
const contextLines = 3

// op is one line of an edit script.
type op struct {
	kind byte // ' ', '-', '+'
	text string
}

// splitLines splits text into lines without their newlines, noting whether the last
// line lacked one.
func splitLines(s string) (lines []string, noEOL bool) {
	if s == "" {
		return nil, false
	}
	lines = strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		return lines[:len(lines)-1], false
	}
	return lines, true
}

// editScript returns a shortest edit script from a to b (Myers' O(ND) algorithm), after
// stripping the common prefix and suffix.
func editScript(a, b []string) []op {
	var pre, suf []op
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		pre = append(pre, op{' ', a[0]})
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		suf = append(suf, op{' ', a[len(a)-1]})
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	mid := myers(a, b)
	out := append(pre, mid...)
	for i := len(suf) - 1; i >= 0; i-- {
		out = append(out, suf[i])
	}
	return out
}

// myers computes a shortest edit script; past maxEdit it deletes all of a and inserts
// all of b.
func myers(a, b []string) []op {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return replaceAll(a, b)
	}
	max := n + m
	if max > maxEdit {
		max = maxEdit
	}
	off := max + 1
	v := make([]int, 2*max+3)
	var trace [][]int // trace[d] holds v[off-d .. off+d] before step d
	for d := 0; d <= max; d++ {
		snap := make([]int, 2*d+1)
		copy(snap, v[off-d:off+d+1])
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: insertion
			} else {
				x = v[off+k-1] + 1 // right: deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(a, b, trace, d)
			}
		}
	}
	return replaceAll(a, b)
}

// backtrack walks the saved frontiers from the end point back to the origin.
func backtrack(a, b []string, trace [][]int, dEnd int) []op {
	x, y := len(a), len(b)
	var rev []op
	for d := dEnd; d > 0; d-- {
		vd := trace[d] // frontier after step d-1, indexed k+d
		get := func(k int) int { return vd[k+d] }
		k := x - y
		var prevK int
		if k == -d || (k != d && get(k-1) < get(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := get(prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x, y = x-1, y-1
			rev = append(rev, op{' ', a[x]})
		}
		if x == prevX {
			y--
			rev = append(rev, op{'+', b[y]})
		} else {
			x--
			rev = append(rev, op{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, op{' ', a[x]})
	}
	out := make([]op, len(rev))
	for i, o := range rev {
		out[len(rev)-1-i] = o
	}
	return out
}

func replaceAll(a, b []string) []op {
	out := make([]op, 0, len(a)+len(b))
	for _, l := range a {
		out = append(out, op{'-', l})
	}
	for _, l := range b {
		out = append(out, op{'+', l})
	}
	return out
}

// UnifiedDiff returns the hunks of a unified diff (as `diff -u`, without the ---/+++
// header) turning oldText into newText, or "" when they are equal. A last line without
// a newline is marked "\ No newline at end of file".
func UnifiedDiff(oldText, newText string) string {
	if oldText == newText {
		return ""
	}
	a, aNoEOL := splitLines(oldText)
	b, bNoEOL := splitLines(newText)
	// Mark the missing final newline on the line itself, so that a change of only the
	// final newline is a change of that line.
	if aNoEOL {
		a[len(a)-1] += "\x00"
	}
	if bNoEOL {
		b[len(b)-1] += "\x00"
	}
	ops := editScript(a, b)
	var sb strings.Builder
	for i := 0; i < len(ops); {
		// Find the next change.
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(0, i-contextLines)
		// Extend the hunk while changes are within 2*context of each other.
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*contextLines {
				end = min(end+contextLines, len(ops))
				break
			}
			end = run
		}
		writeHunk(&sb, ops, start, end)
		i = end
	}
	return sb.String()
}

// writeHunk writes ops[start:end] with its @@ header.
func writeHunk(sb *strings.Builder, ops []op, start, end int) {
	aLine, bLine := 1, 1
	for _, o := range ops[:start] {
		if o.kind != '+' {
			aLine++
		}
		if o.kind != '-' {
			bLine++
		}
	}
	aCount, bCount := 0, 0
	for _, o := range ops[start:end] {
		if o.kind != '+' {
			aCount++
		}
		if o.kind != '-' {
			bCount++
		}
	}
	// diff -u numbers an empty range by the line before it.
	if aCount == 0 {
		aLine--
	}
	if bCount == 0 {
		bLine--
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", hunkRange(aLine, aCount), hunkRange(bLine, bCount))
	for _, o := range ops[start:end] {
		text, noEOL := strings.CutSuffix(o.text, "\x00")
		sb.WriteByte(o.kind)
		sb.WriteString(text)
		sb.WriteByte('\n')
		if noEOL {
			sb.WriteString("\\ No newline at end of file\n")
		}
	}
}

func hunkRange(line, count int) string {
	if count == 1 {
		return fmt.Sprint(line)
	}
	return fmt.Sprintf("%d,%d", line, count)
}
