// Command make_zstd_chunked writes a zstd:chunked blob with containers/storage's own writer
// (pkg/chunked/compressor, what podman/buildah push with), so verify_lazy's zstd-chunked
// checks run on that layout too: its 64-byte footer, tar-split and rolling-checksum chunks.
//
//	make_zstd_chunked [-level N] IN_TAR OUT_BLOB
//
// prints the annotations containers/storage gives the layer, with the blob's digest, size and
// diff ID, as JSON.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"go.podman.io/storage/pkg/chunked/compressor"
)

func main() {
	level := flag.Int("level", 0, "zstd level (0: containers/storage's default)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: make_zstd_chunked [-level N] IN_TAR OUT_BLOB")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *level); err != nil {
		fmt.Fprintf(os.Stderr, "make_zstd_chunked: %v\n", err)
		os.Exit(1)
	}
}

func run(in, out string, level int) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	var lp *int
	if level != 0 {
		lp = &level
	}
	annotations := map[string]string{}
	blobHash := sha256.New()
	cw := &counter{w: io.MultiWriter(dst, blobHash)}
	w, err := compressor.ZstdCompressor(cw, annotations, lp)
	if err != nil {
		return err
	}
	diffHash := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, diffHash), src); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	// The blob decompresses to the tar as it came.
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return err
	}
	if string(h.Sum(nil)) != string(diffHash.Sum(nil)) {
		return fmt.Errorf("%s does not decompress to %s", out, in)
	}
	j, _ := json.MarshalIndent(struct {
		Annotations map[string]string `json:"annotations"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		DiffID      string            `json:"diffID"`
	}{annotations, fmt.Sprintf("sha256:%x", blobHash.Sum(nil)), cw.n, fmt.Sprintf("sha256:%x", diffHash.Sum(nil))}, "", "  ")
	fmt.Println(string(j))
	return nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
