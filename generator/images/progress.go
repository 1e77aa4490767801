package images

import (
	"fmt"
	"io"
	"strings"
)

// bar is a one-line progress bar for one image's layers, redrawn in place with \r.
// A nil *bar draws nothing.
type bar struct {
	w          io.Writer
	tag        string
	total, got int64
	shown      int // last drawn permille
}

const barWidth = 30

func newBar(w io.Writer, tag string) *bar {
	if w == nil {
		return nil
	}
	return &bar{w: w, tag: tag, shown: -1}
}

// add announces n more bytes to fetch.
func (b *bar) add(n int64) {
	if b != nil {
		b.total += n
	}
}

// Write counts fetched bytes; it never fails.
func (b *bar) Write(p []byte) (int, error) {
	if b == nil {
		return len(p), nil
	}
	b.got += int64(len(p))
	b.draw(false)
	return len(p), nil
}

// done draws the final state and ends the line.
func (b *bar) done(err error) {
	if b == nil {
		return
	}
	b.draw(true)
	if err != nil {
		fmt.Fprintf(b.w, " failed\n")
		return
	}
	fmt.Fprintln(b.w)
}

func (b *bar) draw(force bool) {
	permille := 1000
	if b.total > 0 {
		permille = int(min(b.got, b.total) * 1000 / b.total)
	}
	if !force && permille == b.shown {
		return
	}
	b.shown = permille
	fill := permille * barWidth / 1000
	fmt.Fprintf(b.w, "\r%s [%s%s] %s / %s", b.tag, strings.Repeat("=", fill), strings.Repeat(" ", barWidth-fill), size(b.got), size(b.total))
}

// size formats a byte count in binary units with one decimal.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
