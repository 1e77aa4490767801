package writer
import ("testing";"path/filepath";"time";"os";"runtime/pprof";"crypto/sha256")
func TestQuickTiming(t *testing.T) {
	files := testBundle(40000, 0)
	dir := filepath.Join(t.TempDir(), "demo")
	Write(dir, files, NoSync())
	t0 := time.Now()
	for _, f := range files { sha256.Sum256(f.Data) }
	t.Log("sha", time.Since(t0))
	f, _ := os.Create("/tmp/noop.prof")
	pprof.StartCPUProfile(f)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		Write(dir, files)
		t.Log(time.Since(t0))
	}
	pprof.StopCPUProfile()
}
