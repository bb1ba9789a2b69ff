// Package web serves the Spare explorer: server-rendered HTML pages (html/template, assets embedded, charts
// drawn as SVG on the server, no CDN), live updates by Server-Sent Events, and a JSON API under /api for
// everything the pages show. It reads the SQLite index that package index keeps, and asks the node only for
// what the index does not hold (balances, validators).
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/ledger/tx"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Server is the explorer's HTTP handler.
type Server struct {
	db   *index.DB
	c    *client.Client // may be nil: balances and validators are then not shown
	ix   *index.Indexer // may be nil: no live updates
	log  *slog.Logger
	mux  *http.ServeMux
	tmpl map[string]*template.Template

	mu    sync.Mutex
	cache map[string]cached // per-height results (overview, charts, validators)
}

type cached struct {
	height int64
	at     time.Time
	v      any
}

// New returns the explorer's handler over db. c (the node) and ix (for live updates) may be nil.
func New(db *index.DB, c *client.Client, ix *index.Indexer, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{db: db, c: c, ix: ix, log: log, mux: http.NewServeMux(), cache: map[string]cached{}}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static), time.Hour)))
	s.mux.HandleFunc("GET /live", s.live)
	for _, p := range s.pageRoutes() {
		s.mux.HandleFunc("GET "+p.path, s.page(p))
		apiPath := "/api" + p.path
		if p.path == "/{$}" {
			apiPath = "/api/overview"
		}
		s.mux.HandleFunc("GET "+apiPath, s.api(p))
	}
	s.mux.HandleFunc("GET /api/price-index", s.api(route{load: s.loadPriceIndex}))
	s.mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API route: " + r.URL.Path + "; see /api/overview and docs/explorer.md"})
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		s.renderError(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
}

// APIRoutes lists the JSON routes the server answers (for the documentation's test).
func APIRoutes() []string {
	s := &Server{}
	out := []string{"/api/price-index"}
	for _, p := range s.pageRoutes() {
		if p.path == "/{$}" {
			out = append(out, "/api/overview")
			continue
		}
		out = append(out, "/api"+p.path)
	}
	return out
}

func cacheFor(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// route is one page and its API twin: load reads what both show.
type route struct {
	path string
	tmpl string
	load func(r *http.Request) (any, error)
}

// errBadRequest marks an error caused by the request (400).
type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }

func badRequest(format string, a ...any) error { return errBadRequest{fmt.Sprintf(format, a...)} }

func status(err error) (int, string) {
	var br errBadRequest
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, br.msg
	case errors.Is(err, index.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "request cancelled"
	}
	return http.StatusInternalServerError, "internal error; the explorer's log has the details"
}

func (s *Server) api(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := rt.load(r)
		if err != nil {
			code, msg := status(err)
			if code == http.StatusInternalServerError {
				s.log.Error("api", "path", r.URL.Path, "err", err)
			}
			writeJSON(w, code, map[string]string{"error": msg})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}

// live streams an event per indexed block: `event: block`, data {"height", "time_ms", "txs", "types", ...}.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	if s.ix == nil {
		http.Error(w, "live updates are off: this explorer does not index", http.StatusServiceUnavailable)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, cancel := s.ix.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	h, _ := s.db.Height(r.Context())
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: {\"height\":%d}\n\n", h)
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		case u := <-ch:
			b, _ := json.Marshal(u)
			fmt.Fprintf(w, "event: block\ndata: %s\n\n", b)
		}
		fl.Flush()
	}
}

// memo returns the cached value for key if it was computed at the current indexed height, else computes it.
func (s *Server) memo(ctx context.Context, key string, f func() (any, error)) (any, error) {
	h, err := s.db.Height(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && c.height == h && time.Since(c.at) < time.Minute {
		return c.v, nil
	}
	v, err := f()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache[key] = cached{height: h, at: time.Now(), v: v}
	s.mu.Unlock()
	return v, nil
}

// Query parameters.

func page(r *http.Request) (index.Page, error) {
	var p index.Page
	var err error
	if p.Offset, err = intParam(r, "offset", 0, 1<<30); err != nil {
		return p, err
	}
	if p.Limit, err = intParam(r, "limit", 50, index.MaxLimit); err != nil {
		return p, err
	}
	if p.Limit == 0 {
		return p, badRequest("limit 0: use 1..%d", index.MaxLimit)
	}
	return p, nil
}

func intParam(r *http.Request, name string, def, maxV int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxV {
		return 0, badRequest("%s %q: use a whole number from 0 to %d", name, v, maxV)
	}
	return n, nil
}

func idParam(r *http.Request, name, what string) (uint64, error) {
	v := r.PathValue(name)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, badRequest("%s id %q: use a positive whole number", what, v)
	}
	return n, nil
}

func addrParam(v, name string) (string, error) {
	if v == "" {
		return "", nil
	}
	a, err := tx.ParseAddress(v)
	if err != nil {
		return "", badRequest("%s %q: not an address (want spare1...): %v", name, v, err)
	}
	return a.String(), nil
}

// known rejects query parameters a route does not take, so a misspelt filter is an error and never silently
// dropped.
func known(r *http.Request, names ...string) error {
	for k := range r.URL.Query() {
		ok := k == "offset" || k == "limit"
		for _, n := range names {
			ok = ok || k == n
		}
		if !ok {
			all := append([]string{"offset", "limit"}, names...)
			return badRequest("unknown parameter %q: this page takes %s", k, strings.Join(all, ", "))
		}
	}
	return nil
}
