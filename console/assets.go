package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// asset is one embedded page file, kept as is and gzipped, with an ETag
// from its content.
type asset struct {
	plain, gzipped []byte
	etag           string
}

// loadAssets reads the embedded files once. Compressing them at start
// sends about a third of the bytes; the ETag lets a browser that has them
// revalidate with a 304 instead of fetching them again (no-cache: an
// upgraded binary's files are picked up at once).
func loadAssets(files fs.FS) (map[string]*asset, error) {
	out := map[string]*asset{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path] = &asset{plain: b, gzipped: z.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out, err
}

// serveAsset serves a file under /ui/ ("/ui/" is index.html), gzipped
// when the browser accepts it.
func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" {
		name = "index.html"
	}
	a, ok := c.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, etag := a.plain, a.etag
	w.Header().Set("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		body, etag = a.gzipped, a.etag[:len(a.etag)-1]+`-gzip"`
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}
