package parallel

import (
	"errors"
	"fmt"
	"testing"
)

func TestDoRunsEveryIndexAndReportsLowestError(t *testing.T) {
	out := make([]int, 1000)
	if err := Do(len(out), func(i int) error { out[i] = i * i; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("index %d not run", i)
		}
	}
	err := Do(100, func(i int) error {
		if i == 17 || i == 63 {
			return fmt.Errorf("fail %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "fail 17" {
		t.Fatalf("got %v, want the lowest failing index", err)
	}
	if err := Do(0, func(int) error { return errors.New("never") }); err != nil {
		t.Fatal(err)
	}
}
