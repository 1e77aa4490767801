package writer
import ("testing";"path/filepath";"time")
func TestQuickTiming(t *testing.T) {
	files := testBundle(40000, 0)
	dir := filepath.Join(t.TempDir(), "demo")
	Write(dir, files)
	time.Sleep(2*time.Second)
	for i := 0; i < 6; i++ {
		t0 := time.Now()
		want, _ := prepare(files)
		t1 := time.Now()
		live, _ := readLive(osFS{}, dir)
		t2 := time.Now()
		compare(osFS{}, dir, want, live.files)
		t3 := time.Now()
		Write(dir, files)
		t4 := time.Now()
		t.Log("prepare", t1.Sub(t0), "readLive", t2.Sub(t1), "compare", t3.Sub(t2), "Write", t4.Sub(t3))
	}
}
