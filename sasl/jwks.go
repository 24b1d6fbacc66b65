package sasl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// JWKS is the key set of sasl.oauthbearer.jwks.endpoint.url: an https (or
// http) URL, fetched again every refresh interval, or a file: URL, read
// again whenever the file changes. A failed refresh keeps the last good
// set, so a flapping identity provider does not lock everyone out.
type JWKS struct {
	endpoint *url.URL
	refresh  time.Duration
	client   *http.Client
	now      func() time.Time

	mu sync.Mutex // guards the fields below
	// set is the last key set read successfully; nil before the first.
	set     jwk.Set
	fetched time.Time // when set was fetched (URL) or the file's mtime (file)
	size    int64     // the file's size when read
}

// maxJWKSSize bounds a key set document.
const maxJWKSSize = 1 << 20

// DefaultJWKSRefresh is sasl.oauthbearer.jwks.endpoint.refresh.ms's default.
const DefaultJWKSRefresh = time.Hour

// NewJWKS returns the key set at endpoint. refresh applies to http(s) URLs;
// client nil means a client with a 10 s timeout.
func NewJWKS(endpoint string, refresh time.Duration, client *http.Client) (*JWKS, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("invalid JWKS endpoint %q: %w", endpoint, err)
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" {
			return nil, fmt.Errorf("JWKS file URL %q has no path", endpoint)
		}
	case "http", "https":
	default:
		return nil, fmt.Errorf("JWKS endpoint %q: scheme must be https, http or file", endpoint)
	}
	if refresh <= 0 {
		refresh = DefaultJWKSRefresh
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &JWKS{endpoint: u, refresh: refresh, client: client, now: time.Now}, nil
}

// Set returns the current key set, reading or fetching it when due.
func (j *JWKS) Set(ctx context.Context) (jwk.Set, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var err error
	if j.endpoint.Scheme == "file" {
		err = j.readFileLocked()
	} else if j.set == nil || j.now().Sub(j.fetched) >= j.refresh {
		err = j.fetchLocked(ctx)
	}
	if j.set == nil {
		if err == nil {
			err = fmt.Errorf("no key set")
		}
		return nil, err
	}
	return j.set, nil
}

func (j *JWKS) readFileLocked() error {
	fi, err := os.Stat(j.endpoint.Path)
	if err != nil {
		return err
	}
	if j.set != nil && fi.ModTime().Equal(j.fetched) && fi.Size() == j.size {
		return nil
	}
	f, err := os.Open(j.endpoint.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	set, err := parseJWKS(f)
	if err != nil {
		return err
	}
	j.set, j.fetched, j.size = set, fi.ModTime(), fi.Size()
	return nil
}

func (j *JWKS) fetchLocked(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.endpoint.String(), nil)
	if err != nil {
		return err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	set, err := parseJWKS(resp.Body)
	if err != nil {
		return err
	}
	j.set, j.fetched = set, j.now()
	return nil
}

func parseJWKS(r io.Reader) (jwk.Set, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSSize {
		return nil, fmt.Errorf("JWKS document is over %d bytes", maxJWKSSize)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("invalid JWKS: %w", err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("JWKS has no keys")
	}
	return set, nil
}
