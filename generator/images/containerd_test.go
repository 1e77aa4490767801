package images

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/model"
)

// TestSkopeoReadsArchives has Debian's skopeo read archives: every one as a
// docker-archive; those whose top manifest has an OCI media type (an OCI index, an OCI
// image) also as an OCI archive by tag, per platform, and by copying every blob out of
// it, which makes skopeo verify each digest. skopeo's oci transport skips index.json
// entries with Docker media types, which containerd imports (TestContainerdImport).
func TestSkopeoReadsArchives(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("SKIPPED: skopeo is not installed (apt-get install -y skopeo); the Go read-back checks in TestPinPullArchive still ran")
	}
	w := newWorld(t)
	ctx := context.Background()
	pins, err := Pin(ctx, Needed(component.Default(), w.c))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	if _, err := Pull(ctx, pins, cacheDir); err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{model.ImagePause, model.ImageCoreDNS, model.ImageScheduler} {
		tag := w.c.Images.Tags[comp]
		data, err := Archive(cacheDir, tag, pins[tag])
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) string {
			out, err := exec.Command(skopeo, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		ociRef := "oci-archive:" + f + ":" + tag[strings.LastIndex(tag, ":")+1:]
		if out := run("inspect", "docker-archive:"+f); !strings.Contains(out, `"Architecture": "amd64"`) {
			t.Errorf("%s as docker-archive: %s", tag, out)
		}
		if comp == model.ImageScheduler { // Docker media types: docker-archive only
			continue
		}
		raw := run("inspect", "--raw", ociRef)
		if got, _ := sha256Hex(raw); "sha256:"+got != pins[tag].Digest {
			t.Errorf("%s: skopeo reads a top manifest hashing to sha256:%s, pinned %s", tag, got, pins[tag].Digest)
		}
		for _, arch := range []string{"amd64", "arm64"} {
			if comp != model.ImagePause && arch == "arm64" {
				continue
			}
			if out := run("inspect", "--override-os", "linux", "--override-arch", arch, ociRef); !strings.Contains(out, `"Architecture": "`+arch+`"`) {
				t.Errorf("%s %s: %s", tag, arch, out)
			}
		}
		run("copy", "--insecure-policy", ociRef, "dir:"+filepath.Join(t.TempDir(), "copy"))
	}
}

// TestContainerdImport runs a real containerd, imports archives exactly as the unit does
// (`ctr -n k8s.io images import FILE`), and asks containerd's CRI image service, as the
// kubelet does, for the references the static pods render (name:tag@sha256:…).
func TestContainerdImport(t *testing.T) {
	containerd, err1 := exec.LookPath("containerd")
	ctr, err2 := exec.LookPath("ctr")
	if err1 != nil || err2 != nil || os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root and containerd + ctr (apt-get install -y containerd); the import path is not checked against containerd")
	}
	w := newWorld(t)
	ctx := context.Background()
	pins, err := Pin(ctx, All(w.c))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	if _, err := Pull(ctx, pins, cacheDir); err != nil {
		t.Fatal(err)
	}
	c := resolve(t, testSpec(w.host, ""), lockFor(w.c, pins))

	dir, err := os.MkdirTemp("", "ctrd") // short: the socket path must fit 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cmd := exec.Command(containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	})
	for i := 0; ; i++ {
		if exec.Command(ctr, "-a", sock, "version").Run() == nil {
			break
		}
		if i == 100 {
			t.Fatalf("containerd did not start:\n%s", logBuf.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	imported := map[string]bool{}
	for _, n := range []*model.Node{c.Node("cp-1"), c.Node("worker-1")} {
		archives := map[string][]byte{}
		for _, tag := range ForNode(component.Default(), c, n) {
			if archives[tag], err = Archive(cacheDir, tag, pins[tag]); err != nil {
				t.Fatal(err)
			}
		}
		files, err := EmbedFiles(component.Default(), c, n, archives)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Path, ".tar") || imported[f.Path] {
				continue
			}
			imported[f.Path] = true
			p := filepath.Join(dir, filepath.Base(f.Path))
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			for range 2 { // idempotent
				if out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "import", p).CombinedOutput(); err != nil {
					t.Fatalf("ctr images import %s: %v\n%s", f.Path, err, out)
				}
			}
		}
	}
	out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "ls", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	for _, tag := range Needed(component.Default(), c) {
		byTag, byDigest, _ := containerdNames(tag, mustHash(t, pins[tag].Digest))
		for _, want := range []string{byTag, byDigest} {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("containerd lacks image %s; has:\n%s", want, out)
			}
		}
	}
	// The kubelet's question, through the CRI: is the rendered reference present?
	for _, tag := range Needed(component.Default(), c) {
		ref := tag + "@" + pins[tag].Digest
		found, err := criImagePresent(sock, ref)
		if err != nil {
			t.Logf("LOUD: containerd's CRI image service did not answer (%v); checked image names only", err)
			break
		}
		if !found {
			t.Errorf("CRI ImageStatus(%s): not found, the kubelet would pull it", ref)
		}
	}
	if found, err := criImagePresent(sock, c.Images.Tags[model.ImagePause]+"@sha256:"+strings.Repeat("0", 64)); err == nil && found {
		t.Errorf("CRI finds an image by a digest nobody imported")
	}
}

// criImagePresent calls runtime.v1.ImageService/ImageStatus over gRPC (HTTP/2 without
// TLS on the unix socket, protobuf encoded by hand: ImageStatusRequest{image: {image:
// ref}}) and reports whether the response carries an image.
func criImagePresent(sock, ref string) (bool, error) {
	spec := protoBytes(1, []byte(ref))
	req := protoBytes(1, spec)
	frame := make([]byte, 5+len(req))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(req)))
	copy(frame[5:], req)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://containerd/runtime.v1.ImageService/ImageStatus", bytes.NewReader(frame))
	if err != nil {
		return false, err
	}
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("TE", "trailers")
	resp, err := (&http.Client{Transport: tr}).Do(r)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	status := resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status")
	}
	if status != "0" {
		return false, fmt.Errorf("grpc-status %q: %s", status, resp.Trailer.Get("Grpc-Message")+resp.Header.Get("Grpc-Message"))
	}
	if len(body) < 5 {
		return false, fmt.Errorf("short gRPC response %x", body)
	}
	msg := body[5:]
	// ImageStatusResponse field 1 (image), wire type 2, non-empty.
	return len(msg) > 2 && msg[0] == 0x0a && msg[1] != 0, nil
}

// protoBytes encodes one length-delimited protobuf field.
func protoBytes(field int, b []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(field<<3|2))
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}
