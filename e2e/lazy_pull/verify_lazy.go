// Command verify_lazy checks lazily pullable layer blobs (eStargz and zstd:chunked)
// independently of rules_image, with stargz-snapshotter's estargz library (the formats'
// reference reader) doing the reading, and makes reference blobs with that library's writers.
//
//	verify_lazy estargz BLOB TOC_DIGEST UNCOMPRESSED_TAR
//	verify_lazy zstd-chunked BLOB MANIFEST_CHECKSUM MANIFEST_POSITION TARSPLIT_POSITION UNCOMPRESSED_TAR
//	verify_lazy make-estargz [-chunk-size N] [-min-chunk-size N] [-level N] IN_TAR OUT_BLOB
//	verify_lazy make-zstd-chunked [-chunk-size N] [-min-chunk-size N] IN_TAR OUT_BLOB
//	verify_lazy layout BLOB [TOC_OUT]
//
// UNCOMPRESSED_TAR is the layer as any gzip or zstd decoder gives it (for eStargz it ends
// with the stargz.index.json entry). TARSPLIT_POSITION may be "-" for a blob without a
// tar-split (stargz-snapshotter's own zstd:chunked writer makes those). Built in GOPATH mode
// against Debian's packaged sources; see tools.sh.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

const usageText = `usage:
  verify_lazy estargz BLOB TOC_DIGEST UNCOMPRESSED_TAR
  verify_lazy zstd-chunked BLOB MANIFEST_CHECKSUM MANIFEST_POSITION TARSPLIT_POSITION|- UNCOMPRESSED_TAR
  verify_lazy make-estargz [-chunk-size N] [-min-chunk-size N] [-level N] IN_TAR OUT_BLOB
  verify_lazy make-zstd-chunked [-chunk-size N] [-min-chunk-size N] IN_TAR OUT_BLOB
  verify_lazy layout BLOB [TOC_OUT]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch {
	case cmd == "estargz" && len(args) == 3:
		err = verifyEstargz(args[0], args[1], args[2])
	case cmd == "zstd-chunked" && len(args) == 5:
		err = verifyZstdChunked(args[0], args[1], args[2], args[3], args[4])
	case cmd == "make-estargz" || cmd == "make-zstd-chunked":
		err = makeBlob(cmd, args)
	case cmd == "layout" && (len(args) == 1 || len(args) == 2):
		tocOut := ""
		if len(args) == 2 {
			tocOut = args[1]
		}
		err = layout(args[0], tocOut)
	default:
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "verify_lazy %s: FAIL: %v\n", cmd, err)
		os.Exit(1)
	}
}

func note(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "note: "+format+"\n", a...)
}

// ---------------------------------------------------------------------------------------------
// The plain tar.

type tarEntry struct {
	hdr     *tar.Header
	dataOff int64 // where the entry's content starts in the tar file
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readTar indexes a plain tar: its headers and where each entry's content is. archive/tar
// reads headers block by block, so the count of bytes it has taken is the content's offset.
func readTar(p string) (*os.File, []tarEntry, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	cr := &countReader{r: bufio.NewReaderSize(f, 1<<20)}
	tr := tar.NewReader(cr)
	var ents []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: entry %d: %v", p, len(ents), err)
		}
		ents = append(ents, tarEntry{hdr: h, dataOff: cr.n})
	}
	return f, ents, nil
}

func tocType(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeReg:
		return "reg"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeDir:
		return "dir"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("unsupported tar type %q", h.Typeflag)
}

func cleanName(name string) string {
	// As estargz's cleanEntryName: the path relative to the root.
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// sameStream compares a stream with a file byte for byte.
func sameStream(what string, got io.Reader, wantPath string) (int64, error) {
	f, err := os.Open(wantPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	a, b := bufio.NewReaderSize(got, 1<<20), bufio.NewReaderSize(f, 1<<20)
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	var off int64
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return off, fmt.Errorf("%s: reading: %v", what, errA)
		}
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return off, fmt.Errorf("%s: reading %s: %v", what, wantPath, errB)
		}
		n := na
		if nb < n {
			n = nb
		}
		for i := 0; i < n; i++ {
			if bufA[i] != bufB[i] {
				return off, fmt.Errorf("%s differs from %s at byte %d", what, wantPath, off+int64(i))
			}
		}
		off += int64(n)
		if na != nb {
			if na < nb {
				return off, fmt.Errorf("%s ends at byte %d, %s goes on", what, off, wantPath)
			}
			return off, fmt.Errorf("%s goes on past the end of %s at byte %d", what, wantPath, off)
		}
		if na < len(bufA) {
			return off, nil
		}
	}
}

// ---------------------------------------------------------------------------------------------
// The TOC as written (both formats' fields), next to the library's parsed view.

type rawTOC struct {
	Version        int        `json:"version"`
	Entries        []rawEntry `json:"entries"`
	TarSplitDigest string     `json:"tarSplitDigest"`
}

type rawEntry struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Size        int64             `json:"size"`
	ModTime     string            `json:"modtime"`
	AccessTime  string            `json:"accesstime"`
	ChangeTime  string            `json:"changetime"`
	LinkName    string            `json:"linkName"`
	Mode        int64             `json:"mode"`
	UID         int               `json:"uid"`
	GID         int               `json:"gid"`
	Uname       string            `json:"userName"`
	Gname       string            `json:"groupName"`
	Offset      int64             `json:"offset"`
	EndOffset   int64             `json:"endOffset"`
	InnerOffset int64             `json:"innerOffset"`
	DevMajor    int64             `json:"devMajor"`
	DevMinor    int64             `json:"devMinor"`
	Xattrs      map[string][]byte `json:"xattrs"`
	Digest      string            `json:"digest"`
	ChunkOffset int64             `json:"chunkOffset"`
	ChunkSize   int64             `json:"chunkSize"`
	ChunkDigest string            `json:"chunkDigest"`
	ChunkType   string            `json:"chunkType"`
}

var (
	estargzKeys    = "name type size modtime linkName mode uid gid userName groupName offset innerOffset devMajor devMinor xattrs digest chunkOffset chunkSize chunkDigest"
	containersKeys = "name type size modtime accesstime changetime linkName mode uid gid offset endOffset devMajor devMinor xattrs digest chunkOffset chunkSize chunkDigest chunkType"
)

// parseTOC decodes the TOC JSON and notes any key the format's writer does not use (JSON
// decoding in Go ignores the case of keys, the writers do not).
func parseTOC(b []byte, keys string, topKeys string) (*rawTOC, error) {
	var toc rawTOC
	if err := json.Unmarshal(b, &toc); err != nil {
		return nil, fmt.Errorf("TOC JSON: %v", err)
	}
	var generic struct {
		Entries []map[string]json.RawMessage `json:"entries"`
	}
	var top map[string]json.RawMessage
	_ = json.Unmarshal(b, &generic)
	_ = json.Unmarshal(b, &top)
	known := map[string]bool{}
	for _, k := range strings.Fields(keys) {
		known[k] = true
	}
	unknown := map[string]int{}
	for _, e := range generic.Entries {
		for k := range e {
			if !known[k] {
				unknown[k]++
			}
		}
	}
	for k := range top {
		if !strings.Contains(" "+topKeys+" ", " "+k+" ") {
			unknown["(top level) "+k]++
		}
	}
	for k, n := range unknown {
		note("TOC key %q (%d entries) is not one this format's writer uses", k, n)
	}
	if toc.Version != 1 {
		return nil, fmt.Errorf("TOC version %d, want 1", toc.Version)
	}
	return &toc, nil
}

type flavor int

const (
	// stargz-snapshotter's writers: modtime in seconds, "" for 0, size and linkName only where
	// they mean something.
	flavorStargz flavor = iota
	// containers/storage's writer: the tar header's fields as they are, compared exactly.
	flavorContainers
)

func (f flavor) String() string {
	if f == flavorContainers {
		return "containers/storage"
	}
	return "stargz-snapshotter"
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func isNoTime(t time.Time) bool { return t.IsZero() || t.Unix() == 0 && t.Nanosecond() == 0 }

func sameTime(fl flavor, toc time.Time, tarT time.Time) bool {
	if isNoTime(toc) || isNoTime(tarT) {
		return isNoTime(toc) && isNoTime(tarT)
	}
	if toc.Equal(tarT) {
		return true
	}
	// estargz's writer rounds to the second.
	return fl == flavorStargz && toc.Equal(tarT.Round(time.Second))
}

func xattrsOf(h *tar.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			m[strings.TrimPrefix(k, "SCHILY.xattr.")] = v
		}
	}
	return m
}

func compareMeta(fl flavor, e *rawEntry, h *tar.Header) error {
	typ := tocType(h)
	if e.Name != h.Name {
		return fmt.Errorf("TOC name %q, tar name %q", e.Name, h.Name)
	}
	if e.Type != typ {
		return fmt.Errorf("type %q in the TOC, %q in the tar", e.Type, typ)
	}
	if e.Mode != h.Mode {
		return fmt.Errorf("mode %#o in the TOC, %#o in the tar", e.Mode, h.Mode)
	}
	if e.UID != h.Uid || e.GID != h.Gid {
		return fmt.Errorf("uid:gid %d:%d in the TOC, %d:%d in the tar", e.UID, e.GID, h.Uid, h.Gid)
	}
	wantSize, wantLink := h.Size, h.Linkname
	wantMajor, wantMinor := h.Devmajor, h.Devminor
	if fl == flavorStargz {
		if typ != "reg" {
			wantSize = 0
		}
		if typ != "symlink" && typ != "hardlink" {
			wantLink = ""
		}
		if typ != "char" && typ != "block" {
			wantMajor, wantMinor = 0, 0
		}
	}
	if e.Size != wantSize {
		return fmt.Errorf("size %d in the TOC, %d in the tar", e.Size, wantSize)
	}
	if e.LinkName != wantLink {
		return fmt.Errorf("link name %q in the TOC, %q in the tar", e.LinkName, wantLink)
	}
	if e.DevMajor != wantMajor || e.DevMinor != wantMinor {
		return fmt.Errorf("device %d,%d in the TOC, %d,%d in the tar", e.DevMajor, e.DevMinor, wantMajor, wantMinor)
	}
	times := []struct {
		what string
		toc  string
		tar  time.Time
	}{{"modtime", e.ModTime, h.ModTime}}
	if fl == flavorContainers {
		times = append(times, struct {
			what string
			toc  string
			tar  time.Time
		}{"accesstime", e.AccessTime, h.AccessTime}, struct {
			what string
			toc  string
			tar  time.Time
		}{"changetime", e.ChangeTime, h.ChangeTime})
	}
	for _, t := range times {
		tt, err := parseTime(t.toc)
		if err != nil {
			return fmt.Errorf("%s %q is not RFC 3339: %v", t.what, t.toc, err)
		}
		if !sameTime(fl, tt, t.tar) {
			return fmt.Errorf("%s %q in the TOC, %s in the tar", t.what, t.toc, t.tar.UTC().Format(time.RFC3339Nano))
		}
	}
	want := xattrsOf(h)
	if len(want) != len(e.Xattrs) {
		return fmt.Errorf("%d xattrs in the TOC, %d in the tar", len(e.Xattrs), len(want))
	}
	for k, v := range e.Xattrs {
		if w, ok := want[k]; !ok || w != string(v) {
			return fmt.Errorf("xattr %q is %q in the TOC, %q in the tar", k, v, w)
		}
	}
	return nil
}

type stats struct {
	entries, chunks, bytes int64
	types                  map[string]int
}

func (s *stats) String() string {
	var ts []string
	for t, n := range s.types {
		ts = append(ts, fmt.Sprintf("%s=%d", t, n))
	}
	sort.Strings(ts)
	return fmt.Sprintf("%d entries (%s), %d chunks, %d bytes of file content", s.entries, strings.Join(ts, " "), s.chunks, s.bytes)
}

// compareAll checks the TOC's entries against the tar's, in order, and reads every regular
// file through the library's reader, chunk by chunk, each through its verifier.
func compareAll(fl flavor, r *estargz.Reader, v estargz.TOCEntryVerifier, toc *rawTOC, tf *os.File, tents []tarEntry) (*stats, error) {
	st := &stats{types: map[string]int{}}
	seen := map[string]bool{}
	var buf, tbuf []byte
	i := 0 // next TOC entry
	for _, te := range tents {
		h := te.hdr
		for i < len(toc.Entries) && toc.Entries[i].Type == "chunk" {
			return nil, fmt.Errorf("TOC entry %d: chunk of %q without its reg entry before it", i, toc.Entries[i].Name)
		}
		if i == len(toc.Entries) {
			return nil, fmt.Errorf("%s: in the tar but not in the TOC (the TOC has %d entries)", h.Name, len(toc.Entries))
		}
		e := &toc.Entries[i]
		i++
		if err := compareMeta(fl, e, h); err != nil {
			return nil, fmt.Errorf("%s: %v", h.Name, err)
		}
		name := cleanName(h.Name)
		if seen[name] {
			return nil, fmt.Errorf("%s: a second entry for %q", h.Name, name)
		}
		seen[name] = true
		st.entries++
		st.types[e.Type]++

		// This entry's chunk entries come next.
		nChunkEntries := 0
		for i < len(toc.Entries) && toc.Entries[i].Type == "chunk" {
			if c := toc.Entries[i]; c.Name != "" && c.Name != e.Name {
				return nil, fmt.Errorf("%s: chunk entry %d names %q", h.Name, i, c.Name)
			}
			nChunkEntries++
			i++
		}

		lib, ok := r.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("%s: the estargz reader has no entry %q", h.Name, name)
		}
		if e.Type == "hardlink" {
			target, ok := r.Lookup(cleanName(e.LinkName))
			if !ok || target != lib {
				return nil, fmt.Errorf("%s: the estargz reader does not resolve the hard link to %q", h.Name, e.LinkName)
			}
			continue
		}
		if lib.Type != e.Type || lib.Mode != e.Mode || lib.Size != e.Size {
			return nil, fmt.Errorf("%s: the estargz reader sees %s mode %#o size %d", h.Name, lib.Type, lib.Mode, lib.Size)
		}
		if tt, _ := parseTime(e.ModTime); !lib.ModTime().Equal(tt) && !(isNoTime(tt) && isNoTime(lib.ModTime())) {
			return nil, fmt.Errorf("%s: the estargz reader sees modtime %v", h.Name, lib.ModTime())
		}
		if e.Type != "reg" {
			continue
		}
		if h.Size == 0 {
			if nChunkEntries > 0 {
				return nil, fmt.Errorf("%s: empty file with %d chunk entries", h.Name, nChunkEntries)
			}
			continue
		}
		fr, err := r.OpenFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", h.Name, err)
		}
		whole := sha256.New()
		var off int64
		chunks := 0
		for off < h.Size {
			ce, ok := r.ChunkEntryForOffset(name, off)
			if !ok {
				return nil, fmt.Errorf("%s: no chunk for byte %d", h.Name, off)
			}
			if ce.ChunkOffset != off || ce.ChunkSize <= 0 || off+ce.ChunkSize > h.Size {
				return nil, fmt.Errorf("%s: chunk for byte %d covers [%d,+%d) of %d bytes", h.Name, off, ce.ChunkOffset, ce.ChunkSize, h.Size)
			}
			n := int(ce.ChunkSize)
			if cap(buf) < n {
				buf, tbuf = make([]byte, n), make([]byte, n)
			}
			b, tb := buf[:n], tbuf[:n]
			if got, err := fr.ReadAt(b, off); got != n && err != nil {
				return nil, fmt.Errorf("%s: reading chunk [%d,+%d) at blob offset %d: %v", h.Name, off, n, ce.Offset, err)
			}
			dv, err := v.Verifier(ce)
			if err != nil {
				return nil, fmt.Errorf("%s: chunk [%d,+%d): %v", h.Name, off, n, err)
			}
			dv.Write(b)
			if !dv.Verified() {
				return nil, fmt.Errorf("%s: chunk [%d,+%d) at blob offset %d does not match its TOC digest", h.Name, off, n, ce.Offset)
			}
			if _, err := tf.ReadAt(tb, te.dataOff+off); err != nil {
				return nil, fmt.Errorf("%s: reading the tar: %v", h.Name, err)
			}
			if !bytes.Equal(b, tb) {
				j := 0
				for b[j] == tb[j] {
					j++
				}
				return nil, fmt.Errorf("%s: content differs from the tar's at byte %d", h.Name, off+int64(j))
			}
			whole.Write(b)
			off += ce.ChunkSize
			chunks++
		}
		if chunks != nChunkEntries+1 {
			return nil, fmt.Errorf("%s: read %d chunks, the TOC has %d", h.Name, chunks, nChunkEntries+1)
		}
		if e.Digest != "" && e.Digest != "sha256:"+hex.EncodeToString(whole.Sum(nil)) {
			return nil, fmt.Errorf("%s: digest %s in the TOC, the content is sha256:%x", h.Name, e.Digest, whole.Sum(nil))
		}
		st.chunks += int64(chunks)
		st.bytes += h.Size
	}
	if i != len(toc.Entries) {
		return nil, fmt.Errorf("%s: in the TOC (entry %d of %d) but not in the tar", toc.Entries[i].Name, i, len(toc.Entries))
	}
	return st, nil
}

// ---------------------------------------------------------------------------------------------
// eStargz.

// openBlob opens a blob for random access: the file, a reader over all of it, its size.
func openBlob(path string) (*os.File, *io.SectionReader, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	return f, io.NewSectionReader(f, 0, fi.Size()), fi.Size(), nil
}

func verifyEstargz(blobPath, tocDigestArg, tarPath string) error {
	want, err := digest.Parse(tocDigestArg)
	if err != nil {
		return fmt.Errorf("TOC digest %q: %v", tocDigestArg, err)
	}
	bf, sr, size, err := openBlob(blobPath)
	if err != nil {
		return err
	}
	defer bf.Close()

	r, err := estargz.Open(sr)
	if err != nil {
		return fmt.Errorf("estargz.Open: %v", err)
	}
	if r.TOCDigest() != want {
		return fmt.Errorf("the blob's TOC (stargz.index.json) is %s, the annotation says %s", r.TOCDigest(), want)
	}
	v, err := r.VerifyTOC(want)
	if err != nil {
		return fmt.Errorf("VerifyTOC: %v", err)
	}

	// The TOC read again without the library: the footer's offset, one gzip member holding a
	// tar with stargz.index.json and the end-of-archive, ending where the footer starts.
	tocOff, footerSize, err := estargz.OpenFooter(sr)
	if err != nil {
		return fmt.Errorf("footer: %v", err)
	}
	if footerSize != estargz.FooterSize {
		note("legacy %d-byte stargz footer", footerSize)
	}
	if tocOff <= 0 || tocOff >= size-footerSize {
		return fmt.Errorf("footer gives TOC offset %d in a %d-byte blob", tocOff, size)
	}
	tocMember := make([]byte, size-footerSize-tocOff)
	if _, err := bf.ReadAt(tocMember, tocOff); err != nil {
		return err
	}
	tocJSON, err := readTOCMember(tocMember)
	if err != nil {
		return fmt.Errorf("TOC gzip member at %d: %v", tocOff, err)
	}
	if d := digest.FromBytes(tocJSON); d != want {
		return fmt.Errorf("stargz.index.json at %d is %s, the annotation says %s", tocOff, d, want)
	}
	toc, err := parseTOC(tocJSON, estargzKeys, "version entries")
	if err != nil {
		return err
	}

	tf, tents, err := readTar(tarPath)
	if err != nil {
		return err
	}
	defer tf.Close()
	if len(tents) == 0 || tents[len(tents)-1].hdr.Name != estargz.TOCTarName {
		return fmt.Errorf("%s: the last entry is not %s", tarPath, estargz.TOCTarName)
	}
	last := tents[len(tents)-1]
	got := make([]byte, last.hdr.Size)
	if _, err := tf.ReadAt(got, last.dataOff); err != nil {
		return err
	}
	if !bytes.Equal(got, tocJSON) {
		return fmt.Errorf("%s: %s differs from the blob's TOC", tarPath, estargz.TOCTarName)
	}
	st, err := compareAll(flavorStargz, r, v, toc, tf, tents[:len(tents)-1])
	if err != nil {
		return err
	}

	// The whole blob, gunzipped, is the tar.
	zr, err := gzip.NewReader(io.NewSectionReader(bf, 0, size))
	if err != nil {
		return fmt.Errorf("gunzip: %v", err)
	}
	if _, err := sameStream("the gunzipped blob", zr, tarPath); err != nil {
		return err
	}
	fmt.Printf("estargz OK: %s; TOC %s at %d, %d-byte footer, %d-byte blob\n", st, want, tocOff, footerSize, size)
	return nil
}

// readTOCMember reads the TOC gzip member: one member, stargz.index.json then the tar's
// end-of-archive, and nothing after it.
func readTOCMember(b []byte) ([]byte, error) {
	br := bytes.NewReader(b)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, err
	}
	if h.Name != estargz.TOCTarName || h.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("first entry %q (type %q), want %s", h.Name, h.Typeflag, estargz.TOCTarName)
	}
	j, err := io.ReadAll(tr)
	if err != nil {
		return nil, err
	}
	if h2, err := tr.Next(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("another entry %q", h2.Name)
		}
		return nil, fmt.Errorf("after %s: %v (want the end-of-archive)", estargz.TOCTarName, err)
	}
	if rest, err := io.ReadAll(zr); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the end-of-archive (%v)", len(rest), err)
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%d bytes between the TOC member and the footer", br.Len())
	}
	return j, nil
}

// ---------------------------------------------------------------------------------------------
// zstd:chunked.

var (
	skippableMagic = []byte{0x50, 0x2a, 0x4d, 0x18}
	// containers/storage's footer magic, "GNUlInUx".
	containersFooterMagic = []byte("GNUlInUx")
	// estargz/zstdchunked's (0.14.3), "GnUlInUx": one byte differs.
	stargzFooterMagic = []byte{0x47, 0x6e, 0x55, 0x6c, 0x49, 0x6e, 0x55, 0x78}
)

const containersFooterSize = 64

// The footer's little-endian uint64s (estargz's 40-byte footer has the first four).
var footerFields = []string{"manifest offset", "manifest length", "manifest uncompressed length", "manifest type",
	"tar-split offset (0: none)", "tar-split length", "tar-split uncompressed length"}

// containersFooter lets the library open containers/storage's layout: its 64-byte footer
// parsed here, the TOC still parsed and read by estargz/zstdchunked.
type containersFooter struct{ *zstdchunked.Decompressor }

func (containersFooter) FooterSize() int64 { return containersFooterSize }

func (containersFooter) ParseFooter(p []byte) (blobPayloadSize, tocOffset, tocSize int64, err error) {
	if len(p) != containersFooterSize || !bytes.Equal(p[56:], containersFooterMagic) {
		return 0, 0, 0, errors.New("not a containers/storage zstd:chunked footer")
	}
	off := int64(binary.LittleEndian.Uint64(p[0:8]))
	return off - 8, off, int64(binary.LittleEndian.Uint64(p[8:16])), nil
}

// parsePosition parses "a:b:c[:d]" into n decimal numbers.
func parsePosition(s string, n int) ([]uint64, error) {
	parts := strings.Split(s, ":")
	if len(parts) != n {
		return nil, fmt.Errorf("%q: want %d numbers separated by ':'", s, n)
	}
	var out []uint64
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", s, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// skippableAt reads the skippable frame whose payload starts at off and is length bytes.
func skippableAt(f io.ReaderAt, size int64, what string, off, length uint64) ([]byte, error) {
	if off < 8 || off+length > uint64(size) {
		return nil, fmt.Errorf("%s [%d,+%d) is not inside the %d-byte blob", what, off, length, size)
	}
	b := make([]byte, 8+length)
	if _, err := f.ReadAt(b, int64(off)-8); err != nil {
		return nil, err
	}
	if !bytes.Equal(b[:4], skippableMagic) {
		return nil, fmt.Errorf("%s: no skippable frame header at %d (% x)", what, off-8, b[:4])
	}
	if n := binary.LittleEndian.Uint32(b[4:8]); uint64(n) != length {
		return nil, fmt.Errorf("%s: the skippable frame at %d holds %d bytes, the position says %d", what, off-8, n, length)
	}
	return b[8:], nil
}

func unzstd(b []byte, wantLen uint64, what string) ([]byte, error) {
	d, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	out, err := d.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: zstd: %v", what, err)
	}
	if uint64(len(out)) != wantLen {
		return nil, fmt.Errorf("%s: %d bytes decompressed, the position says %d", what, len(out), wantLen)
	}
	return out, nil
}

// tarGetter gives tar-split the tar's file contents, each name in the order of the tar.
type tarGetter struct {
	f     *os.File
	files map[string][]tarEntry
}

func (g *tarGetter) Get(name string) (io.ReadCloser, error) {
	q := g.files[name]
	if len(q) == 0 {
		return nil, fmt.Errorf("tar-split names file %q, which the tar does not have (again)", name)
	}
	g.files[name] = q[1:]
	return io.NopCloser(io.NewSectionReader(g.f, q[0].dataOff, q[0].hdr.Size)), nil
}

func verifyZstdChunked(blobPath, checksumArg, manifestPos, tarsplitPos, tarPath string) error {
	wantChecksum, err := digest.Parse(checksumArg)
	if err != nil {
		return fmt.Errorf("manifest checksum %q: %v", checksumArg, err)
	}
	mpos, err := parsePosition(manifestPos, 4)
	if err != nil {
		return fmt.Errorf("manifest position %v", err)
	}
	if mpos[3] != 1 {
		return fmt.Errorf("manifest position %q: type %d, want 1", manifestPos, mpos[3])
	}
	var tpos []uint64
	if tarsplitPos != "-" && tarsplitPos != "" {
		if tpos, err = parsePosition(tarsplitPos, 3); err != nil {
			return fmt.Errorf("tar-split position %v", err)
		}
	}
	bf, sr, size, err := openBlob(blobPath)
	if err != nil {
		return err
	}
	defer bf.Close()

	// The footer: containers/storage's 64 bytes, or estargz/zstdchunked's 40, each in a
	// skippable frame that ends the blob.
	fl := flavorStargz
	var footer []byte
	tail := make([]byte, 8+containersFooterSize)
	if size < int64(len(tail)) {
		return fmt.Errorf("%d-byte blob is too small", size)
	}
	if _, err := bf.ReadAt(tail, size-int64(len(tail))); err != nil {
		return err
	}
	footerStart := size
	switch {
	case bytes.Equal(tail[len(tail)-8:], containersFooterMagic) && bytes.Equal(tail[:4], skippableMagic) &&
		binary.LittleEndian.Uint32(tail[4:8]) == containersFooterSize:
		fl, footer, footerStart = flavorContainers, tail[8:], size-int64(len(tail))
		want := []uint64{mpos[0], mpos[1], mpos[2], 1}
		if tpos != nil {
			want = append(want, tpos...)
		} else {
			want = append(want, 0, 0, 0)
		}
		for i, w := range want {
			if got := binary.LittleEndian.Uint64(footer[8*i:]); got != w {
				return fmt.Errorf("the footer's %s is %d, the annotations say %d", footerFields[i], got, w)
			}
		}
	case bytes.Equal(tail[len(tail)-8:], stargzFooterMagic) && bytes.Equal(tail[24:28], skippableMagic) &&
		binary.LittleEndian.Uint32(tail[28:32]) == zstdchunked.FooterSize:
		footer, footerStart = tail[32:], size-48
		want := []uint64{mpos[0], mpos[1], mpos[2], 1}
		for i, w := range want {
			if got := binary.LittleEndian.Uint64(footer[8*i:]); got != w {
				return fmt.Errorf("the footer's %s is %d, the annotations say %d", footerFields[i], got, w)
			}
		}
	default:
		return fmt.Errorf("no zstd:chunked footer (containers/storage's 64 bytes or estargz's 40) in a skippable frame at the end")
	}

	// The TOC: the annotation's checksum is of its compressed bytes.
	compressedTOC, err := skippableAt(bf, size, "manifest", mpos[0], mpos[1])
	if err != nil {
		return err
	}
	if d := digest.FromBytes(compressedTOC); d != wantChecksum {
		return fmt.Errorf("the manifest at %d is %s compressed, the annotation says %s", mpos[0], d, wantChecksum)
	}
	tocJSON, err := unzstd(compressedTOC, mpos[2], "manifest")
	if err != nil {
		return err
	}
	keys := estargzKeys
	top := "version entries"
	if fl == flavorContainers {
		keys, top = containersKeys, "version entries tarSplitDigest"
	}
	toc, err := parseTOC(tocJSON, keys, top)
	if err != nil {
		return err
	}
	next := mpos[0] + mpos[1] // the end of the manifest's frame

	var tarSplit []byte
	if tpos != nil {
		if toc.TarSplitDigest == "" {
			return fmt.Errorf("a tar-split position but no tarSplitDigest in the TOC: containers/storage would not use the tar-split")
		}
		compressed, err := skippableAt(bf, size, "tar-split", tpos[0], tpos[1])
		if err != nil {
			return err
		}
		if d := digest.FromBytes(compressed); d.String() != toc.TarSplitDigest {
			return fmt.Errorf("the tar-split at %d is %s compressed, the TOC's tarSplitDigest says %s", tpos[0], d, toc.TarSplitDigest)
		}
		if tarSplit, err = unzstd(compressed, tpos[2], "tar-split"); err != nil {
			return err
		}
		if tpos[0] != next+8 {
			note("the tar-split's frame does not follow the manifest's (%d, %d)", tpos[0]-8, next)
		}
		next = tpos[0] + tpos[1]
	} else if toc.TarSplitDigest != "" {
		return fmt.Errorf("the TOC has tarSplitDigest %s but no tar-split position was given", toc.TarSplitDigest)
	}
	if int64(next) != footerStart {
		return fmt.Errorf("%d bytes between the last metadata frame (ends at %d) and the footer (at %d)", footerStart-int64(next), next, footerStart)
	}

	// The library's reader: its own zstdchunked.Decompressor first.
	tocDigest := digest.FromBytes(tocJSON)
	r, err := estargz.Open(sr, estargz.WithDecompressors(new(zstdchunked.Decompressor)))
	if err != nil {
		if fl != flavorContainers {
			return fmt.Errorf("estargz.Open with zstdchunked.Decompressor: %v", err)
		}
		note("estargz's zstdchunked.Decompressor cannot open containers/storage's layout (%s); "+
			"opening it with that decompressor behind a 64-byte footer parser", strings.Join(strings.Fields(err.Error()), " "))
		r, err = estargz.Open(sr, estargz.WithDecompressors(containersFooter{new(zstdchunked.Decompressor)}))
		if err != nil {
			return fmt.Errorf("estargz.Open with a 64-byte footer: %v", err)
		}
	}
	if r.TOCDigest() != tocDigest {
		return fmt.Errorf("the library's TOC digest %s is not that of the manifest's JSON, %s", r.TOCDigest(), tocDigest)
	}
	v, err := r.VerifyTOC(tocDigest)
	if err != nil {
		if fl != flavorContainers || !strings.Contains(err.Error(), "some ChunkDigest not found") {
			return fmt.Errorf("VerifyTOC: %v", err)
		}
		note("VerifyTOC: %v: containers/storage gives a single-chunk file only its digest; "+
			"checking those files' digests as their one chunk's", err)
		if v, err = verifierFromTOC(toc); err != nil {
			return err
		}
	}

	tf, tents, err := readTar(tarPath)
	if err != nil {
		return err
	}
	defer tf.Close()
	st, err := compareAll(fl, r, v, toc, tf, tents)
	if err != nil {
		return err
	}

	// The tar-split with the tar's file contents is the tar, byte for byte.
	if tarSplit != nil {
		g := &tarGetter{f: tf, files: map[string][]tarEntry{}}
		for _, te := range tents {
			g.files[te.hdr.Name] = append(g.files[te.hdr.Name], te)
		}
		out := asm.NewOutputTarStream(g, storage.NewJSONUnpacker(bytes.NewReader(tarSplit)))
		n, err := sameStream("the tar rebuilt from the tar-split", out, tarPath)
		out.Close()
		if err != nil {
			return err
		}
		_ = n
	}

	// The whole blob, decompressed (the skippable frames skipped), is the tar.
	zr, err := zstd.NewReader(io.NewSectionReader(bf, 0, size))
	if err != nil {
		return err
	}
	defer zr.Close()
	if _, err := sameStream("the decompressed blob", zr, tarPath); err != nil {
		return err
	}
	ts := "no tar-split"
	if tarSplit != nil {
		ts = fmt.Sprintf("tar-split %s rebuilds the tar", toc.TarSplitDigest)
	}
	fmt.Printf("zstd:chunked OK (%s layout): %s; manifest %s (TOC JSON %s), %s, %d-byte blob\n",
		fl, st, wantChecksum, tocDigest, ts, size)
	return nil
}

// verifierFromTOC is the library's verifier, except that a regular file without chunk
// entries and without a chunkDigest is checked against its digest.
func verifierFromTOC(toc *rawTOC) (estargz.TOCEntryVerifier, error) {
	m := map[int64]digest.Digest{}
	for i, e := range toc.Entries {
		if (e.Type != "reg" || e.Size == 0) && e.Type != "chunk" {
			continue
		}
		d := e.ChunkDigest
		single := e.Type == "reg" && (i+1 == len(toc.Entries) || toc.Entries[i+1].Type != "chunk")
		if d == "" && single {
			d = e.Digest
		}
		if d == "" {
			return nil, fmt.Errorf("%s: no chunkDigest for the chunk at %d", e.Name, e.Offset)
		}
		if _, ok := m[e.Offset]; ok {
			return nil, fmt.Errorf("%s: offset %d found twice", e.Name, e.Offset)
		}
		pd, err := digest.Parse(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", e.Name, err)
		}
		m[e.Offset] = pd
	}
	return offsetVerifier(m), nil
}

type offsetVerifier map[int64]digest.Digest

func (m offsetVerifier) Verifier(ce *estargz.TOCEntry) (digest.Verifier, error) {
	d, ok := m[ce.Offset]
	if !ok {
		return nil, fmt.Errorf("no digest for the chunk at offset %d", ce.Offset)
	}
	return d.Verifier(), nil
}

// ---------------------------------------------------------------------------------------------
// Reference blobs from the library's writers.

type zstdCompression struct {
	*zstdchunked.Compressor
	*zstdchunked.Decompressor
}

func makeBlob(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	chunkSize := fs.Int("chunk-size", 0, "largest chunk of a file (0: the library's 4 MiB)")
	minChunkSize := fs.Int("min-chunk-size", 0, "pack small files into one compressed stream (0: off)")
	level := fs.Int("level", 0, "eStargz's gzip level (0: the library's default, 9)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	in, out := fs.Arg(0), fs.Arg(1)
	// Build cuts the tar into GOMAXPROCS parts, each starting a new compressed stream: one
	// part unless asked, so the layout does not depend on the machine.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	opts := []estargz.Option{estargz.WithChunkSize(*chunkSize), estargz.WithMinChunkSize(*minChunkSize)}
	if *level > 0 && cmd == "make-estargz" {
		opts = append(opts, estargz.WithCompressionLevel(*level))
	}
	metadata := map[string]string{}
	if cmd == "make-zstd-chunked" {
		opts = append(opts, estargz.WithCompression(&zstdCompression{
			&zstdchunked.Compressor{CompressionLevel: zstd.EncoderLevelFromZstd(3), Metadata: metadata},
			new(zstdchunked.Decompressor),
		}))
	}
	blob, err := estargz.Build(io.NewSectionReader(f, 0, fi.Size()), opts...)
	if err != nil {
		return fmt.Errorf("estargz.Build: %v", err)
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(o, h), blob)
	if err != nil {
		return err
	}
	if err := blob.Close(); err != nil {
		return err
	}
	if err := o.Close(); err != nil {
		return err
	}

	// The uncompressed size, as stargz-snapshotter's converters count it.
	of, err := os.Open(out)
	if err != nil {
		return err
	}
	defer of.Close()
	var dr io.Reader
	if cmd == "make-zstd-chunked" {
		zr, err := zstd.NewReader(of)
		if err != nil {
			return err
		}
		defer zr.Close()
		dr = zr
	} else if dr, err = gzip.NewReader(of); err != nil {
		return err
	}
	dh := sha256.New()
	un, err := io.Copy(dh, dr)
	if err != nil {
		return err
	}
	if d := fmt.Sprintf("sha256:%x", dh.Sum(nil)); d != blob.DiffID().String() {
		return fmt.Errorf("decompressed blob is %s, Build says %s", d, blob.DiffID())
	}
	annotations := map[string]string{
		estargz.TOCJSONDigestAnnotation:         blob.TOCDigest().String(),
		estargz.StoreUncompressedSizeAnnotation: strconv.FormatInt(un, 10),
	}
	for k, v := range metadata {
		annotations[k] = v
	}
	j, _ := json.MarshalIndent(struct {
		Annotations map[string]string `json:"annotations"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		DiffID      string            `json:"diffID"`
	}{annotations, fmt.Sprintf("sha256:%x", h.Sum(nil)), n, blob.DiffID().String()}, "", "  ")
	fmt.Println(string(j))
	return nil
}

// ---------------------------------------------------------------------------------------------
// Layout: the compressed streams (gzip members or zstd frames) and the tar bytes in each.

type stream struct {
	kind           string
	start, end     int64 // in the blob
	ustart, uend   int64 // in the decompressed tar
	skippablePayld []byte
}

func gzipMembers(b []byte) ([]stream, []byte, error) {
	br := bytes.NewReader(b)
	var out []stream
	var tarBytes bytes.Buffer
	for br.Len() > 0 {
		start := int64(len(b) - br.Len())
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip member at %d: %v", start, err)
		}
		zr.Multistream(false)
		u0 := int64(tarBytes.Len())
		if _, err := io.Copy(&tarBytes, zr); err != nil {
			return nil, nil, fmt.Errorf("gzip member at %d: %v", start, err)
		}
		kind := "gzip"
		if len(zr.Header.Extra) > 0 {
			kind = fmt.Sprintf("gzip extra=%q", zr.Header.Extra)
		}
		out = append(out, stream{kind: kind, start: start, end: int64(len(b) - br.Len()), ustart: u0, uend: int64(tarBytes.Len())})
	}
	return out, tarBytes.Bytes(), nil
}

func zstdFrames(b []byte) ([]stream, []byte, error) {
	d, err := zstd.NewReader(nil)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	var out []stream
	var tarBytes []byte
	pos := 0
	for pos < len(b) {
		if len(b)-pos < 8 {
			return nil, nil, fmt.Errorf("%d stray bytes at %d", len(b)-pos, pos)
		}
		magic := binary.LittleEndian.Uint32(b[pos:])
		if magic&0xfffffff0 == 0x184d2a50 {
			n := int(binary.LittleEndian.Uint32(b[pos+4:]))
			out = append(out, stream{kind: "skippable", start: int64(pos), end: int64(pos + 8 + n),
				ustart: int64(len(tarBytes)), uend: int64(len(tarBytes)), skippablePayld: b[pos+8 : pos+8+n]})
			pos += 8 + n
			continue
		}
		if magic != 0xfd2fb528 {
			return nil, nil, fmt.Errorf("no zstd frame at %d", pos)
		}
		fhd := b[pos+4]
		single := fhd&0x20 != 0
		hdr := 1
		if !single {
			hdr++
		}
		hdr += []int{0, 1, 2, 4}[fhd&3]
		fcs := []int{0, 2, 4, 8}[fhd>>6]
		if fhd>>6 == 0 && single {
			fcs = 1
		}
		hdr += fcs
		p := pos + 4 + hdr
		for {
			bh := int(b[p]) | int(b[p+1])<<8 | int(b[p+2])<<16
			last, typ, bsize := bh&1, (bh>>1)&3, bh>>3
			p += 3
			if typ == 1 {
				p++
			} else {
				p += bsize
			}
			if last == 1 {
				break
			}
		}
		if fhd&4 != 0 {
			p += 4
		}
		u0 := len(tarBytes)
		if tarBytes, err = d.DecodeAll(b[pos:p], tarBytes); err != nil {
			return nil, nil, fmt.Errorf("zstd frame at %d: %v", pos, err)
		}
		out = append(out, stream{kind: "zstd", start: int64(pos), end: int64(p), ustart: int64(u0), uend: int64(len(tarBytes))})
		pos = p
	}
	return out, tarBytes, nil
}

type piece struct {
	start, end int64
	what       string
}

func tarPieces(t []byte) ([]piece, error) {
	cr := &countReader{r: bytes.NewReader(t)}
	tr := tar.NewReader(cr)
	var out []piece
	var pos int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if pos%512 != 0 {
			pad := (pos + 511) / 512 * 512
			out = append(out, piece{pos, pad, "padding"})
			pos = pad
		}
		typ := tocType(h)
		out = append(out, piece{pos, cr.n, fmt.Sprintf("header %q %s", h.Name, typ)})
		pos = cr.n
		if h.Size > 0 {
			out = append(out, piece{pos, pos + h.Size, fmt.Sprintf("data %q", h.Name)})
			pos += h.Size
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return nil, err
			}
		}
	}
	if pos%512 != 0 {
		pad := (pos + 511) / 512 * 512
		out = append(out, piece{pos, pad, "padding"})
		pos = pad
	}
	if pos < int64(len(t)) {
		out = append(out, piece{pos, int64(len(t)), fmt.Sprintf("end-of-archive (%d zero bytes)", int64(len(t))-pos)})
	}
	return out, nil
}

func layout(blobPath, tocOut string) error {
	b, err := os.ReadFile(blobPath)
	if err != nil {
		return err
	}
	var streams []stream
	var tarBytes []byte
	switch {
	case len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b:
		streams, tarBytes, err = gzipMembers(b)
	case len(b) > 4 && (bytes.Equal(b[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) || bytes.Equal(b[:4], skippableMagic)):
		streams, tarBytes, err = zstdFrames(b)
	default:
		err = errors.New("neither gzip nor zstd")
	}
	if err != nil {
		return err
	}
	pieces, err := tarPieces(tarBytes)
	if err != nil {
		return fmt.Errorf("the decompressed tar: %v", err)
	}
	fmt.Printf("%s: %d bytes, %d streams, %d tar bytes\n", blobPath, len(b), len(streams), len(tarBytes))
	var tocJSON []byte
	for i, s := range streams {
		fmt.Printf("#%d %s blob [%d,%d) %d bytes -> tar [%d,%d)\n", i, s.kind, s.start, s.end, s.end-s.start, s.ustart, s.uend)
		if s.kind == "skippable" {
			p := s.skippablePayld
			switch {
			case len(p) == 64 && bytes.Equal(p[56:], containersFooterMagic), len(p) == 40 && bytes.Equal(p[32:], stargzFooterMagic):
				var f []string
				for j := 0; j+8 < len(p); j += 8 {
					f = append(f, strconv.FormatUint(binary.LittleEndian.Uint64(p[j:]), 10))
				}
				fmt.Printf("    footer %s magic %q\n", strings.Join(f, " "), p[len(p)-8:])
			case len(p) >= 4 && bytes.Equal(p[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
				d, _ := zstd.NewReader(nil)
				u, err := d.DecodeAll(p, nil)
				d.Close()
				if err != nil {
					fmt.Printf("    zstd payload, does not decompress: %v\n", err)
					break
				}
				// The TOC is one JSON object that starts with its version; tar-split is
				// JSON lines that start with a segment ({"type":2,...}).
				kind := "tar-split"
				if bytes.Contains(u[:min(len(u), 64)], []byte(`"version"`)) {
					kind = "TOC"
					if tocJSON == nil {
						tocJSON = u
					}
				}
				fmt.Printf("    %s: %d compressed bytes (sha256:%x), %d uncompressed (sha256:%x)\n", kind, len(p), sha256.Sum256(p), len(u), sha256.Sum256(u))
			}
			continue
		}
		for _, pc := range pieces {
			if pc.end <= s.ustart || pc.start >= s.uend || pc.start == pc.end {
				continue
			}
			a, e := pc.start, pc.end
			cut := ""
			if a < s.ustart {
				a, cut = s.ustart, " (continued)"
			}
			if e > s.uend {
				e, cut = s.uend, cut+" (continues)"
			}
			fmt.Printf("    tar [%d,%d) %s%s\n", a, e, pc.what, cut)
			if strings.HasPrefix(pc.what, "data \""+estargz.TOCTarName) && tocJSON == nil {
				tocJSON = tarBytes[pc.start:pc.end]
			}
		}
	}
	if tocOut != "" && tocJSON != nil {
		return os.WriteFile(tocOut, tocJSON, 0o644)
	}
	return nil
}
