# VM test of services.gatehouse on a real tailnet: Headscale as the control
# server (behind nginx with a self-signed certificate, embedded DERP), the
# gatehouse host, two tailnet clients (alice is an admin, bob is not) and a
# stub backend.
#
#   nix build .#checks.x86_64-linux.vm           (flake)
#   pkgs.testers.runNixOSTest ./nixos/test.nix  (without flakes)
#
# Needs KVM and a Nix daemon: it does not run in this repository's CI, which
# evaluates the module instead (.ci/nix-checks).
{ pkgs, lib, ... }:

let
  tlsCert = pkgs.runCommand "headscale-selfsigned" { nativeBuildInputs = [ pkgs.openssl ]; } ''
    openssl req -x509 -newkey rsa:2048 -sha256 -days 365 -nodes \
      -out cert.pem -keyout key.pem \
      -subj '/CN=headscale' -addext "subjectAltName=DNS:headscale"
    mkdir -p $out
    cp key.pem cert.pem $out
  '';
  stunPort = 3478;
  tunnelID = "6ff42ae2-765d-4adf-8112-31c55c1551ef";
  backendPort = 8081;
  backend = "http://127.0.0.1:${toString backendPort}";

  routes = {
    domain = "example.com";
    tailnet.admins = [
      # Headscale reports a user's e-mail as the login name when it has
      # one, else the name (older versions: the name, or "name@").
      "alice@example.com"
      "alice"
      "alice@"
    ];
    # Everyone on the tailnet, and the public through the tunnel.
    route.app = {
      inherit backend;
      tailnet.access = "members";
      cloudflare = {
        host = "app";
        access = "app";
      };
    };
    # Admins only, and only on the tailnet.
    route.radarr = {
      inherit backend;
      tailnet.access = "admin";
    };
  };

  tailnetClient = {
    services.tailscale.enable = true;
    security.pki.certificateFiles = [ "${tlsCert}/cert.pem" ];
    environment.systemPackages = [ pkgs.curl ];
  };
in
{
  name = "gatehouse";

  nodes = {
    headscale = {
      services.headscale = {
        enable = true;
        address = "127.0.0.1";
        port = 8080;
        settings = {
          server_url = "https://headscale";
          dns = {
            magic_dns = false; # no MagicDNS, so no HTTPS certificates: nodes serve plain HTTP
            base_domain = "tailnet.test";
          };
          derp = {
            urls = [ ]; # no Internet here
            server = {
              enabled = true;
              region_id = 999;
              stun_listen_addr = "0.0.0.0:${toString stunPort}";
            };
          };
          logtail.enabled = false;
        };
      };
      services.nginx = {
        enable = true;
        virtualHosts.headscale = {
          onlySSL = true;
          sslCertificate = "${tlsCert}/cert.pem";
          sslCertificateKey = "${tlsCert}/key.pem";
          locations."/" = {
            proxyPass = "http://127.0.0.1:8080";
            proxyWebsockets = true;
          };
        };
      };
      networking.firewall = {
        allowedTCPPorts = [ 443 ];
        allowedUDPPorts = [ stunPort ];
      };
      environment.systemPackages = [ pkgs.headscale ];
    };

    server =
      { ... }:
      {
        imports = [ ./module.nix ];
        virtualisation.memorySize = 1024;
        security.pki.certificateFiles = [ "${tlsCert}/cert.pem" ];
        environment.systemPackages = [ pkgs.curl ];

        services.gatehouse = {
          enable = true;
          package = pkgs.callPackage ./package.nix { version = "0.0.0-vmtest"; };
          inherit routes;
          tailnet = {
            controlURL = "https://headscale";
            authKeyFile = "/var/lib/gatehouse-keys/ts-authkey"; # written by the test script
          };
          # The tunnel itself needs Cloudflare; only the ingress it would get
          # is checked, below.
          cloudflare.tunnel = tunnelID;
        };
        services.cloudflared.tunnels.${tunnelID}.credentialsFile = "/var/lib/cloudflared/${tunnelID}.json";
        # Gatehouse opens no port: the firewall stays shut (tsnet dials out).
        networking.firewall.enable = true;
        # LoadCredential needs the key file, which the test script writes
        # once Headscale made it.
        systemd.services.gatehouse.wantedBy = lib.mkForce [ ];

        # The stub backend.
        systemd.services.backend = {
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            DynamicUser = true;
            ExecStart = "${pkgs.python3}/bin/python3 -m http.server ${toString backendPort} --bind 127.0.0.1 --directory ${pkgs.writeTextDir "index.html" "hello from the backend\n"}";
          };
        };

        # The same system with one more route: switching to it must reload
        # the running gateway, not restart it.
        specialisation.moreRoutes.configuration = {
          services.gatehouse.routes.route.extra = {
            inherit backend;
            cloudflare = {
              host = "extra";
              access = "app";
            };
          };
        };
      };

    alice = tailnetClient;
    bob = tailnetClient;
  };

  testScript =
    { nodes, ... }:
    let
      ingress = nodes.server.services.cloudflared.tunnels.${tunnelID}.ingress;
      moreRoutes = "${nodes.server.system.build.toplevel}/specialisation/moreRoutes";
    in
    ''
      import json
      import time

      # Nix already decided what cloudflared would be told.
      ingress = json.loads('${builtins.toJSON ingress}')
      assert ingress == {"app.example.com": "http://127.0.0.1:8750"}, ingress

      def status(machine, url, host=None):
          header = f"-H 'Host: {host}'" if host else ""
          return machine.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' {header} {url}").strip()

      start_all()

      headscale.wait_for_unit("headscale.service")
      headscale.wait_for_unit("nginx.service")
      headscale.wait_for_open_port(443)

      def preauth_key(user):
          headscale.succeed(
              f"headscale users create {user} --email {user}@example.com || headscale users create {user}"
          )
          users = json.loads(headscale.succeed("headscale users list -o json"))
          uid = next(u["id"] for u in users if u["name"] == user)
          # Headscale 0.26 and later take the user's id, earlier ones its name.
          rc, out = headscale.execute(f"headscale preauthkeys create --reusable --expiration 1h --user {uid}")
          if rc != 0:
              out = headscale.succeed(f"headscale preauthkeys create --reusable --expiration 1h --user {user}")
          return out.strip().splitlines()[-1]

      def node_ip(name):
          for n in json.loads(headscale.succeed("headscale nodes list -o json")):
              if name in (n.get("given_name"), n.get("name")):
                  return next(ip for ip in n["ip_addresses"] if "." in ip)
          return None

      def wait_for_node(name):
          for _ in range(120):
              ip = node_ip(name)
              if ip:
                  return ip
              time.sleep(1)
          raise Exception(f"node {name} never joined the tailnet")

      with subtest("gatehouse starts with its credential; the Cloudflare door serves"):
          key = preauth_key("gatehouse")
          server.succeed(
              "install -d -m 0700 /var/lib/gatehouse-keys",
              f"printf %s '{key}' > /var/lib/gatehouse-keys/ts-authkey",
              "chmod 0400 /var/lib/gatehouse-keys/ts-authkey",
          )
          server.wait_for_unit("backend.service")
          server.succeed("systemctl start gatehouse.service")
          # Type=notify: active means gatehouse sent READY=1.
          server.wait_for_unit("gatehouse.service")
          server.wait_for_open_port(8750)
          server.wait_until_succeeds(
              "curl -sf -H 'Host: app.example.com' http://127.0.0.1:8750/ | grep -q 'hello from the backend'"
          )
          assert status(server, "http://127.0.0.1:8750/", "nope.example.com") == "404"
          # A tailnet-only route gets the same 404 as an unknown host.
          assert status(server, "http://127.0.0.1:8750/", "radarr.example.com") == "404"

      with subtest("secrets and state stay out of the store"):
          server.succeed("grep -q 'auth_key_file = \"/run/credentials/gatehouse.service/ts-authkey\"' /etc/gatehouse/routes.hcl")
          server.succeed("grep -q 'state_dir = \"/var/lib/gatehouse/tailnet\"' /etc/gatehouse/routes.hcl")
          server.succeed("systemctl show -p DynamicUser --value gatehouse.service | grep -qx yes")
          server.fail("grep -rq '{key}' /nix/store/*gatehouse-routes.hcl /etc/gatehouse/routes.hcl".format(key=key))

      with subtest("every route node joins the tailnet"):
          radarr = wait_for_node("radarr")
          app = wait_for_node("app")
          server.succeed("test -d /var/lib/private/gatehouse/tailnet/radarr")

      for client, user in ((alice, "alice"), (bob, "bob")):
          key = preauth_key(user)
          client.wait_for_unit("tailscaled.service")
          client.succeed(f"tailscale up --login-server https://headscale --auth-key {key} --hostname {user}")

      with subtest("admins pass the tailnet door, members do not"):
          alice.wait_until_succeeds(f"tailscale ping -c 1 {radarr}", timeout=120)
          alice.wait_until_succeeds(
              f"curl -sf http://{radarr}/ | grep -q 'hello from the backend'", timeout=60
          )
          bob.wait_until_succeeds(f"tailscale ping -c 1 {radarr}", timeout=120)
          bob.wait_until_succeeds(f"curl -s -o /dev/null http://{radarr}/", timeout=60)
          code = bob.succeed(f"curl -s -o /tmp/denied -w '%{{http_code}}' http://{radarr}/").strip()
          print(bob.succeed("cat /tmp/denied"))
          assert code == "403", f"bob got {code} from the admin-only route"
          # A members route lets bob in.
          bob.wait_until_succeeds(f"curl -sf http://{app}/ | grep -q 'hello from the backend'", timeout=60)

      with subtest("the gatehouse command on PATH reads the service's table and state"):
          server.succeed("gatehouse check | grep -q 'ok'")
          server.succeed("gatehouse routes | grep -q radarr")
          # login runs as the service's user on its state directory: every
          # node the service joined is found there.
          out = server.succeed("gatehouse login")
          for node in ("gatehouse", "app", "radarr"):
              assert f"{node}: already joined" in out, out
          # The command's exit status comes back through systemd-run.
          rc, out = server.execute("gatehouse tokens list 2>&1")
          assert rc == 1 and "no oidc block" in out, (rc, out)

      def main_pid():
          return server.succeed("systemctl show -p MainPID --value gatehouse.service").strip()

      with subtest("systemctl reload checks the table and swaps it in place"):
          pid = main_pid()
          server.succeed("systemctl reload gatehouse.service")
          server.wait_until_succeeds("journalctl -u gatehouse.service | grep -q 'route table reloaded'")
          server.succeed("systemctl is-active gatehouse.service")
          assert main_pid() == pid, "reload restarted gatehouse"

      with subtest("a new table from the system configuration is a reload"):
          pid = main_pid()
          assert status(server, "http://127.0.0.1:8750/", "extra.example.com") == "404"
          server.succeed("${moreRoutes}/bin/switch-to-configuration test")
          server.wait_until_succeeds(
              "curl -sf -H 'Host: extra.example.com' http://127.0.0.1:8750/ | grep -q 'hello from the backend'"
          )
          assert main_pid() == pid, "a new route table restarted gatehouse"
          # The tailnet kept working through the reload.
          alice.succeed(f"curl -sf http://{radarr}/ | grep -q 'hello from the backend'")

      with subtest("the watchdog is fed"):
          server.succeed("systemctl show -p WatchdogUSec --value gatehouse.service | grep -qx 30s")
          time.sleep(35)
          server.succeed("systemctl is-active gatehouse.service")
          assert server.succeed("systemctl show -p NRestarts --value gatehouse.service").strip() == "0"

      with subtest("hardening"):
          print(server.execute("systemd-analyze security gatehouse.service")[1])

      with subtest("stopping drains"):
          server.succeed("systemctl stop gatehouse.service")
          server.succeed("journalctl -u gatehouse.service | grep -q draining")
    '';
}
