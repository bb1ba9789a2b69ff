package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultDockerHost is where a Docker engine listens when DOCKER_HOST is not set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// DefaultDockerTimeout bounds the Docker probe: a local engine answers in milliseconds.
const DefaultDockerTimeout = 2 * time.Second

// ErrDockerHostUnsupported is returned by PingDocker for a DOCKER_HOST it cannot reach without a Docker client
// (ssh://, npipe://, tcp:// with TLS).
var ErrDockerHostUnsupported = errors.New("docker host not probed")

// PingDocker asks the Docker engine at host ("unix:///path" or "tcp://host:port"; "" is DefaultDockerHost) for
// GET /_ping, then GET /version, with plain HTTP and no Docker client. It returns the engine's version, e.g.
// "27.3.1" ("API 1.47" when only the ping answered), or why the engine cannot be reached. timeout bounds the
// whole probe (0 is DefaultDockerTimeout).
func PingDocker(ctx context.Context, host string, timeout time.Duration) (string, error) {
	if host == "" {
		host = DefaultDockerHost
	}
	if timeout <= 0 {
		timeout = DefaultDockerTimeout
	}
	u, err := url.Parse(host)
	if err != nil {
		return "", fmt.Errorf("docker host %q: %w", host, err)
	}
	var network, address string
	switch u.Scheme {
	case "unix":
		network, address = "unix", u.Path
	case "tcp", "http":
		network, address = "tcp", u.Host
	default:
		return "", fmt.Errorf("%w: %s (scheme %q)", ErrDockerHostUnsupported, host, u.Scheme)
	}
	if address == "" {
		return "", fmt.Errorf("docker host %q: no address", host)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}}
	get := func(path string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return resp, body, nil
	}
	resp, body, err := get("/_ping")
	if err != nil {
		hint := ""
		if errors.Is(err, fs.ErrPermission) {
			hint = " (is this user in the docker group?)"
		}
		return "", fmt.Errorf("docker engine at %s: %w%s", host, err, hint)
	}
	if strings.TrimSpace(string(body)) != "OK" {
		return "", fmt.Errorf("docker engine at %s: /_ping answered %s", host, quoteLine(string(body)))
	}
	apiVersion := resp.Header.Get("Api-Version")
	var v struct{ Version string }
	if _, body, err := get("/version"); err == nil && json.Unmarshal(body, &v) == nil && v.Version != "" {
		return v.Version, nil
	}
	if apiVersion != "" {
		return "API " + apiVersion, nil
	}
	return "unknown", nil
}
