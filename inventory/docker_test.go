package inventory

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeDocker serves handler on a unix socket in a temporary directory and returns its DOCKER_HOST.
func fakeDocker(t *testing.T, handler http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dock") // short: a socket path is limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

// dockerEngine answers like a Docker engine of the given version.
func dockerEngine(version string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.47")
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		if version == "" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{"Version":"` + version + `","ApiVersion":"1.47","Os":"linux"}`))
	})
	return mux
}

func TestPingDocker(t *testing.T) {
	t.Run("engine", func(t *testing.T) {
		v, err := PingDocker(t.Context(), fakeDocker(t, dockerEngine("27.3.1")), time.Second)
		if err != nil || v != "27.3.1" {
			t.Fatalf("got %q, %v", v, err)
		}
	})
	t.Run("ping only", func(t *testing.T) {
		v, err := PingDocker(t.Context(), fakeDocker(t, dockerEngine("")), time.Second)
		if err != nil || v != "API 1.47" {
			t.Fatalf("got %q, %v", v, err)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: dockerEngine("26.1.0")}
		go srv.Serve(l)
		defer srv.Close()
		v, err := PingDocker(t.Context(), "tcp://"+l.Addr().String(), time.Second)
		if err != nil || v != "26.1.0" {
			t.Fatalf("got %q, %v", v, err)
		}
	})
	t.Run("not docker", func(t *testing.T) {
		host := fakeDocker(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
		if _, err := PingDocker(t.Context(), host, time.Second); err == nil || !strings.Contains(err.Error(), `answered "hello"`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("error status", func(t *testing.T) {
		host := fakeDocker(t, http.NotFoundHandler())
		if _, err := PingDocker(t.Context(), host, time.Second); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("hangs", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		host := fakeDocker(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		start := time.Now()
		_, err := PingDocker(t.Context(), host, 100*time.Millisecond)
		if err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
	})
	t.Run("no socket", func(t *testing.T) {
		host := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
		if _, err := PingDocker(t.Context(), host, time.Second); err == nil || !strings.Contains(err.Error(), host) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		for _, host := range []string{"ssh://me@box", "npipe:////./pipe/docker_engine", "fd://"} {
			if _, err := PingDocker(t.Context(), host, time.Second); !errors.Is(err, ErrDockerHostUnsupported) {
				t.Errorf("%s: got %v", host, err)
			}
		}
	})
	t.Run("bad host", func(t *testing.T) {
		for _, host := range []string{"unix://", "tcp://", "::nonsense"} {
			if _, err := PingDocker(t.Context(), host, time.Second); err == nil {
				t.Errorf("%s: no error", host)
			}
		}
	})
}
