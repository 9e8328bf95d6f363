package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// The bench routes.hcl: three Cloudflare-door routes to the same backend
// handler (each on its own backend port, so connections can be counted
// per route):
//
//	app      access "app", rate limiting on (per client 1e6/s, never hit)
//	nolimit  the same route without any limit
//	family   access "family" behind sign-in (the benchOP, signin/oidctest), same limit as app
//
// No tailnet block: the tailnet door stays off.
func gatehouseConfig(dir string, listen, metrics, app, nolimit, family int, op *benchOP) (string, error) {
	limit := `  limit {
    rate       = "1000000/s"
    burst      = 1000000
    concurrent = 100000
  }
`
	cfg := fmt.Sprintf(`# gatebench: generated, thrown away after the run.
domain = "bench.test"

cloudflare {
  listen = "127.0.0.1:%d"
}

metrics {
  listen = "127.0.0.1:%d"
}

route "app" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "app"
    access = "app"
  }
%s}

route "nolimit" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "nolimit"
    access = "app"
  }
}
`, listen, metrics, app, limit, nolimit)
	if op != nil {
		if err := os.WriteFile(filepath.Join(dir, "client-secret"), []byte(op.Secret+"\n"), 0o600); err != nil {
			return "", err
		}
		cfg += fmt.Sprintf(`
# Sessions are re-checked with the provider every refresh_interval; a
# browser stores the renewed cookie, wrk cannot, so the bench keeps the
# check out of the measured minutes.
oidc {
  issuer             = %q
  client_id          = %q
  client_secret_file = "client-secret"
  refresh_interval   = "1h"
}

route "family" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "family"
    access = "family"
  }
%s}
`, op.Issuer, op.ClientID, family, limit)
	}
	path := filepath.Join(dir, "routes.hcl")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// caddyConfig is Caddy as an equivalent reverse proxy: plain HTTP, no
// admin endpoint, no automatic HTTPS, responses flushed at once.
func caddyConfig(dir string, listen, backend int) (string, error) {
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
}

http://:%d {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:%d {
		flush_interval -1
	}
}
`, listen, backend)
	path := filepath.Join(dir, "Caddyfile")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// nginxConfig is nginx as an equivalent reverse proxy: upstream keep-alive,
// no buffering either way, no body limit, WebSocket upgrades. Keep-alive
// connections are not retired after 1000 requests (nginx's default for
// both sides), as neither Caddy nor gatehouse retires them.
func nginxConfig(dir string, listen, backend int, workers string) (string, error) {
	for _, d := range []string{"nginx-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	cfg := fmt.Sprintf(`# gatebench: generated, thrown away after the run.
daemon off;
master_process on;
worker_processes %s;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %[2]s/nginx-tmp/body;
    proxy_temp_path %[2]s/nginx-tmp/proxy;
    fastcgi_temp_path %[2]s/nginx-tmp/fastcgi;
    uwsgi_temp_path %[2]s/nginx-tmp/uwsgi;
    scgi_temp_path %[2]s/nginx-tmp/scgi;

    upstream backend {
        server 127.0.0.1:%[3]d;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }

    server {
        listen 127.0.0.1:%[4]d;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
        client_max_body_size 0;

        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
`, workers, dir, backend, listen)
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}
