# Evaluation tests of services.gatehouse: lib.evalModules over module.nix
# and the stand-ins in stubs.nix. Needs nixpkgs' lib (the nixpkgs.lib
# repository), which is not part of this repository:
#
#   nix-instantiate --eval --strict --json nixos/tests/eval.nix \
#     --argstr nixpkgsLib /path/to/nixpkgs.lib -A report
#
# .ci/nix-checks runs it (and the typeErrors one by one) when NIXPKGS_LIB is
# set. `report` throws, naming every failed check, or lists the cases.
# The flake's checks pass nixpkgs' own lib instead. nixos_flags_test.go
# passes the README's NixOS example as `readme`.
#
# services.cloudflared comes from cloudflared-stub.nix, or, with
# NIXPKGS_CLOUDFLARED (or --argstr cloudflaredModule) naming nixpkgs'
# nixos/modules/services/networking/cloudflared.nix, from nixpkgs itself;
# the flake's checks use nixpkgs' module.
{
  nixpkgsLib ? builtins.getEnv "NIXPKGS_LIB",
  cloudflaredModule ? builtins.getEnv "NIXPKGS_CLOUDFLARED",
  readme ? "",
  lib ?
    let
      root = /. + nixpkgsLib;
    in
    if nixpkgsLib == "" then
      throw "nixos/tests/eval.nix: set NIXPKGS_LIB (or --argstr nixpkgsLib) to a checkout of nixpkgs.lib"
    else
      import (if builtins.pathExists (root + "/lib/default.nix") then root + "/lib" else root),
}:

let

  # What every evaluation here stands on instead of nixpkgs' NixOS.
  base = [
    ./stubs.nix
    (if cloudflaredModule == "" then ./cloudflared-stub.nix else /. + cloudflaredModule)
  ];

  store = builtins.storeDir;
  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "${store}/00000000000000000000000000000000-${name}";
    meta.mainProgram = "gatehouse";
  };
  gatehouse = fakeDrv "gatehouse-eval";
  exe = "${gatehouse}/bin/gatehouse";
  pkgs = {
    inherit gatehouse;
    coreutils = "${store}/11111111111111111111111111111111-coreutils";
    writeText = name: _text: "${store}/22222222222222222222222222222222-${name}";
    # The script's text stays readable for the checks.
    writeShellScriptBin = name: text: fakeDrv name // { inherit text; };
    runCommand = name: _env: _script: "${store}/33333333333333333333333333333333-${name}";
    stdenv = {
      buildPlatform.canExecute = _: true;
      hostPlatform = { };
    };
    callPackage = _: _: throw "the eval tests use pkgs.gatehouse";
  };
  checkedTable = "${store}/33333333333333333333333333333333-gatehouse-routes.hcl";

  eval =
    config:
    (lib.evalModules {
      modules = base ++ [
        ../module.nix
        { _module.args.pkgs = pkgs; }
        { services.gatehouse.enable = true; }
        config
      ];
    }).config;

  example = import ../examples/routes.nix;

  failedAssertions = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  # nixpkgs' cloudflared module adds an empty warning per tunnel without a
  # raw token.
  warningsOf = c: lib.filter (w: w != "") c.warnings;
  svc = c: c.systemd.services.gatehouse;
  sc = c: (svc c).serviceConfig;

  # A check: what, and the value found against the value wanted.
  is = what: got: want: { inherit what got want; };
  has = what: haystack: needle: {
    inherit what;
    got = lib.hasInfix needle haystack;
    want = true;
  };

  hardening = {
    Type = "notify";
    NotifyAccess = "main";
    DynamicUser = true;
    StateDirectory = "gatehouse";
    UMask = "0077";
    NoNewPrivileges = true;
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    RestrictAddressFamilies = [
      "AF_INET"
      "AF_INET6"
      "AF_UNIX"
      "AF_NETLINK"
    ];
    RestrictNamespaces = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    SystemCallFilter = [
      "@system-service"
      "~@privileged"
    ];
    SystemCallErrorNumber = "EPERM";
  };

  # A tunnel as `cloudflared tunnel create` makes one, named by its UUID.
  uuid = "6ff42ae2-765d-4adf-8112-31c55c1551ef";
  credentials = "/var/lib/cloudflared/${uuid}.json";
  withTunnel = name: { services.cloudflared.tunnels.${name}.credentialsFile = credentials; };

  matrixConfig = lib.recursiveUpdate (withTunnel uuid) {
    services.cloudflared.enable = true;
    services.gatehouse = {
      routes = example // {
        oidc = {
          issuer = "https://auth.example.com/realms/home";
          client_id = "gatehouse";
        };
      };
      tailnet.authKeyFile = "/run/keys/ts-authkey";
      tailnet.controlURL = "https://headscale.example.com";
      oidc.clientSecretFile = "/run/keys/oidc-client-secret";
      environmentFile = "/run/keys/gatehouse.env";
      cloudflare.tunnel = uuid;
      logFormat = "json";
      accessLog = false;
    };
  };
  publicHosts = [
    "photos"
    "files"
    "passwords"
    "watch"
    "request"
    "audiobooks"
    "music"
    "auth"
  ];

  cases = {
    # The reference matrix with every secret, the tunnel and Headscale.
    matrix = {
      config = matrixConfig;
      checks =
        c:
        let
          text = c.services.gatehouse.renderedRoutes;
        in
        [
          (is "failed assertions" (failedAssertions c) [ ])
          (is "warnings" (warningsOf c) [ ])
          (is "ExecStart" (sc c).ExecStart
            ''"${exe}" "run" "-config" "/etc/gatehouse/routes.hcl" "-log-format" "json" "-log-level" "info" "-access-log=false"''
          )
          (is "ExecReload" (sc c).ExecReload [
            ''"${exe}" "check" "-config" "/etc/gatehouse/routes.hcl"''
            "${pkgs.coreutils}/bin/kill -HUP $MAINPID"
          ])
          (is "LoadCredential" (sc c).LoadCredential [
            "oidc-client-secret:/run/keys/oidc-client-secret"
            "ts-authkey:/run/keys/ts-authkey"
          ])
          (is "EnvironmentFile" (sc c).EnvironmentFile "/run/keys/gatehouse.env")
          (is "hardening" (lib.filterAttrs (n: _: hardening ? ${n}) (sc c)) hardening)
          (is "CapabilityBoundingSet" (sc c).CapabilityBoundingSet [ "" ])
          (is "no AmbientCapabilities" ((sc c) ? AmbientCapabilities) false)
          (is "PrivateUsers" (sc c).PrivateUsers true)
          (is "WatchdogSec" (sc c).WatchdogSec "30s")
          (is "TimeoutStopSec" (sc c).TimeoutStopSec "30s 15s")
          (is "stopIfChanged" (svc c).stopIfChanged false)
          (is "reloadTriggers" (svc c).reloadTriggers [ checkedTable ])
          (is "/etc/gatehouse/routes.hcl" c.environment.etc."gatehouse/routes.hcl".source checkedTable)
          (is "cloudflared ingress" c.services.cloudflared.tunnels.${uuid}.ingress (
            lib.genAttrs (map (h: "${h}.example.com") publicHosts) (_: "http://127.0.0.1:8750")
          ))
          (is "cloudflared after gatehouse" (lib.elem "gatehouse.service" c.systemd.services."cloudflared-tunnel-${uuid}".after) true)
          (is "the service's user" (sc c).User "gatehouse")
          (has "listen rendered" text ''listen = "127.0.0.1:8750"'')
          (has "auth key as a credential" text ''auth_key_file = "/run/credentials/gatehouse.service/ts-authkey"'')
          (has "control_url" text ''control_url = "https://headscale.example.com"'')
          (has "state_dir" text ''state_dir = "/var/lib/gatehouse/tailnet"'')
          (has "cookie keys in the state directory" text ''cookie_key_file = "/var/lib/gatehouse/oidc/cookie.keys"'')
          (has "oidc secret as a credential" text ''client_secret_file = "/run/credentials/gatehouse.service/oidc-client-secret"'')
          (has "admins" text ''admins = ["admin@example.com"]'')
          (has "labelled route block" text ''route "immich" {'')
          (has "labelled path block" text ''path "/admin" {'')
          (is "no store path in the table" (lib.hasInfix store text) false)
        ];
    };

    # The LAN door: its block rendered from the lan options, the token as
    # a credential, 443 bound without root, the firewall open on the home
    # interface only.
    lanDoor = {
      config.services.gatehouse = {
        routes = example;
        lan = {
          enable = true;
          listen = [ "192.168.1.10:443" ];
          redirectListen = [ "192.168.1.10:80" ];
          networks = [ "192.168.1.0/24" ];
          interfaces = [ "enp3s0" ];
          openFirewall = true;
          dnsTokenFile = "/run/keys/cloudflare-dns-token";
          acmeEmail = "admin@example.com";
        };
      };
      checks =
        c:
        let
          text = c.services.gatehouse.renderedRoutes;
        in
        [
          (is "failed assertions" (failedAssertions c) [ ])
          (is "LoadCredential" (sc c).LoadCredential [ "lan-dns-token:/run/keys/cloudflare-dns-token" ])
          (is "CapabilityBoundingSet" (sc c).CapabilityBoundingSet [ "CAP_NET_BIND_SERVICE" ])
          (is "AmbientCapabilities" (sc c).AmbientCapabilities [ "CAP_NET_BIND_SERVICE" ])
          (is "PrivateUsers" (sc c).PrivateUsers false)
          (is "firewall" c.networking.firewall.interfaces { enp3s0.allowedTCPPorts = [ 443 80 ]; })
          (has "lan listen" text ''listen = ["192.168.1.10:443"]'')
          (has "lan redirect" text ''redirect_listen = ["192.168.1.10:80"]'')
          (has "lan networks" text ''networks = ["192.168.1.0/24"]'')
          (has "token as a credential" text ''dns_token_file = "/run/credentials/gatehouse.service/lan-dns-token"'')
          (has "lan state" text ''state_dir = "/var/lib/gatehouse/lan"'')
          (has "acme email" text ''acme_email = "admin@example.com"'')
        ];
    };
    lanFirewallClosed = {
      config.services.gatehouse = {
        routes = example;
        lan = {
          enable = true;
          listen = [ "192.168.1.10:8443" ];
          dnsTokenFile = "/run/keys/cloudflare-dns-token";
        };
      };
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (is "no firewall change" c.networking.firewall.interfaces { })
        (is "no capability for a high port" (sc c).CapabilityBoundingSet [ "" ])
      ];
    };
    lanWithoutToken = {
      config.services.gatehouse = {
        routes = example;
        lan = {
          enable = true;
          listen = [ "192.168.1.10:443" ];
        };
      };
      assertion = "lan.enable needs lan.listen";
    };
    lanFirewallWithoutInterfaces = {
      config.services.gatehouse = {
        routes = example;
        lan = {
          enable = true;
          listen = [ "192.168.1.10:443" ];
          dnsTokenFile = "/run/keys/cloudflare-dns-token";
          openFirewall = true;
        };
      };
      assertion = "opens ports on lan.interfaces only";
    };

    # routes and routesFile are exclusive, and one is required.
    bothRoutes = {
      config.services.gatehouse = {
        routes = example;
        routesFile = "/var/lib/gatehouse/routes.hcl";
      };
      assertion = "routes and routesFile are both set";
    };
    noRoutes = {
      config = { };
      assertion = "set the route table, either services.gatehouse.routes";
    };

    # A port below 1024 keeps exactly CAP_NET_BIND_SERVICE, from the host's
    # user namespace.
    lowPort = {
      config.services.gatehouse = {
        routes = example;
        cloudflare.port = 80;
      };
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (is "CapabilityBoundingSet" (sc c).CapabilityBoundingSet [ "CAP_NET_BIND_SERVICE" ])
        (is "AmbientCapabilities" (sc c).AmbientCapabilities [ "CAP_NET_BIND_SERVICE" ])
        (is "PrivateUsers" (sc c).PrivateUsers false)
        (has "listen rendered" c.services.gatehouse.renderedRoutes ''listen = "127.0.0.1:80"'')
      ];
    };
    lowMetricsPort = {
      config.services.gatehouse = {
        routes = example // {
          metrics.listen = "127.0.0.1:99";
        };
      };
      checks = c: [
        (is "CapabilityBoundingSet" (sc c).CapabilityBoundingSet [ "CAP_NET_BIND_SERVICE" ])
      ];
    };
    highPort = {
      config.services.gatehouse = {
        routes = example;
        cloudflare.port = 1024;
      };
      checks = c: [
        (is "CapabilityBoundingSet" (sc c).CapabilityBoundingSet [ "" ])
        (is "PrivateUsers" (sc c).PrivateUsers true)
      ];
    };

    ipv6Door = {
      config = {
        imports = [ (withTunnel "home") ];
        services.gatehouse = {
          routes = example;
          cloudflare.address = "::1";
          cloudflare.tunnel = "home";
        };
      };
      checks = c: [
        (has "listen rendered" c.services.gatehouse.renderedRoutes ''listen = "[::1]:8750"'')
        (is "ingress" c.services.cloudflared.tunnels.home.ingress."photos.example.com" "http://[::1]:8750")
      ];
    };
    # Ingress rules for a cloudflared that does not run: said, not fatal.
    tunnelWithoutCloudflared = {
      config = {
        imports = [ (withTunnel "home") ];
        services.gatehouse = {
          routes = example;
          cloudflare.tunnel = "home";
        };
      };
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (is "warning" (lib.any (lib.hasInfix "services.cloudflared.enable is false") (warningsOf c)) true)
        (is "ingress still written" (lib.length (lib.attrNames c.services.cloudflared.tunnels.home.ingress)) 8)
        (is "no ordering on a unit that does not exist" (c.systemd.services ? cloudflared-tunnel-home) false)
      ];
    };
    wildcardDoor = {
      config = {
        imports = [ (withTunnel "home") ];
        services.gatehouse = {
          routes = example;
          cloudflare.address = "0.0.0.0";
          cloudflare.tunnel = "home";
        };
      };
      checks = c: [
        (is "ingress" c.services.cloudflared.tunnels.home.ingress."photos.example.com" "http://127.0.0.1:8750")
      ];
    };

    # The tunnel mistakes that would send every public host to cloudflared's
    # 404: a misspelt name (the module's ingress rules would create a second,
    # empty tunnel), or no tunnel defined at all.
    tunnelMisspelt = {
      config = {
        imports = [ (withTunnel uuid) ];
        services.cloudflared.enable = true;
        services.gatehouse = {
          routes = example;
          cloudflare.tunnel = "6ff42ae2-765d-4adf-8112-31c55c1551e";
        };
      };
      assertion = "has no credentialsFile or tokenFile, so cloudflared cannot run it and every public host would answer 404. Tunnels defined: \"${uuid}\"";
    };
    tunnelUndefined = {
      config = {
        services.cloudflared.enable = true;
        services.gatehouse = {
          routes = example;
          cloudflare.tunnel = uuid;
        };
      };
      assertion = "Define the tunnel: create it with `cloudflared tunnel create` and set its credentialsFile";
    };
    # A token-run tunnel takes its ingress from Cloudflare's dashboard, and
    # the warning says what to enter there.
    tunnelWithToken = {
      config = {
        services.cloudflared.enable = true;
        services.cloudflared.tunnels.home.tokenFile = "/run/keys/tunnel-token";
        services.gatehouse = {
          routes = example;
          cloudflare.tunnel = "home";
        };
      };
      checks =
        c:
        let
          w = lib.concatStrings (warningsOf c);
        in
        [
          (is "failed assertions" (failedAssertions c) [ ])
          (is "one warning" (lib.length (warningsOf c)) 1)
          (has "ingress ignored" w "ignores the ingress rules written on this host")
          (has "where to set them" w "Public Hostname")
          (has "every host" w "(audiobooks.example.com, photos.example.com, watch.example.com, request.example.com, auth.example.com, music.example.com, files.example.com, passwords.example.com)")
          (has "the door" w "service http://127.0.0.1:8750")
        ];
    };
    # By name, cloudflared needs the account certificate to find the tunnel.
    tunnelByName = {
      config = {
        imports = [ (withTunnel "home") ];
        services.cloudflared.enable = true;
        services.gatehouse = {
          routes = example;
          cloudflare.tunnel = "home";
        };
      };
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (is "warning" (lib.any (lib.hasInfix "is named by name, not by its UUID") (warningsOf c)) true)
      ];
    };
    tunnelByNameWithCertificate = {
      config = {
        imports = [ (withTunnel "home") ];
        services.cloudflared.enable = true;
        services.cloudflared.certificateFile = "/var/lib/cloudflared/cert.pem";
        services.gatehouse = {
          routes = example;
          cloudflare.tunnel = "home";
        };
      };
      checks = c: [ (is "warnings" (warningsOf c) [ ]) ];
    };

    # The gatehouse command on PATH reads the service's table and runs the
    # state-writing commands as the service's user (nixos_flags_test.go runs
    # the same script).
    cli = {
      config.services.gatehouse.routes = example;
      checks =
        c:
        let
          pkgsOnPath = c.environment.systemPackages;
          text = (lib.head pkgsOnPath).text;
        in
        [
          (is "one package" (map (p: p.name) pkgsOnPath) [ "gatehouse" ])
          (has "the service's table" text "GATEHOUSE_CONFIG=\${GATEHOUSE_CONFIG:-'/etc/gatehouse/routes.hcl'}")
          (has "the service's user" text "--property=User='${(sc c).User}'")
          (has "the service's state" text "--property=StateDirectory='${(sc c).StateDirectory}'")
          (has "the service's binary" text "-- '${exe}' \"$@\"")
          (has "systemd-run" text "/bin/systemd-run' --quiet --wait --pipe")
        ];
    };
    cliRoutesFile = {
      config.services.gatehouse.routesFile = "/var/lib/gatehouse/routes.hcl";
      checks = c: [
        (has "the service's table" (lib.head c.environment.systemPackages).text "GATEHOUSE_CONFIG:-'/var/lib/gatehouse/routes.hcl'")
      ];
    };
    cliOff = {
      config.services.gatehouse = {
        routes = example;
        cli.enable = false;
      };
      checks = c: [ (is "nothing on PATH" c.environment.systemPackages [ ]) ];
    };

    # A hand-written file outside the store is read in place (gatehouse
    # watches it); one in the store is linked into /etc and reloads.
    routesFileOutsideStore = {
      config = {
        imports = [ (withTunnel "home") ];
        services.gatehouse = {
          routesFile = "/var/lib/gatehouse/routes.hcl";
          cloudflare.tunnel = "home";
          cloudflare.hostnames = [ "photos.example.com" ];
        };
      };
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (is "ExecStart" (sc c).ExecStart
          ''"${exe}" "run" "-config" "/var/lib/gatehouse/routes.hcl" "-log-format" "text" "-log-level" "info"''
        )
        (is "no /etc link" (c.environment.etc ? "gatehouse/routes.hcl") false)
        (is "reloadTriggers" (svc c).reloadTriggers [ ])
        (is "ingress" c.services.cloudflared.tunnels.home.ingress { "photos.example.com" = "http://127.0.0.1:8750"; })
        (is "renderedRoutes" c.services.gatehouse.renderedRoutes null)
      ];
    };
    routesFileInStore = {
      config.services.gatehouse.routesFile = "${store}/44444444444444444444444444444444-routes.hcl";
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (is "/etc link" c.environment.etc."gatehouse/routes.hcl".source checkedTable)
        (has "ExecStart" (sc c).ExecStart ''"-config" "/etc/gatehouse/routes.hcl"'')
      ];
    };
    routesFileTunnelWithoutHosts = {
      config = {
        imports = [ (withTunnel "home") ];
        services.gatehouse = {
          routesFile = "/var/lib/gatehouse/routes.hcl";
          cloudflare.tunnel = "home";
        };
      };
      assertion = "no Cloudflare hostnames to route";
    };

    # Secrets: never from the store, never written into routes directly.
    secretInStore = {
      config.services.gatehouse = {
        routes = example;
        tailnet.authKeyFile = "${store}/55555555555555555555555555555555-ts-authkey";
      };
      assertion = "services.gatehouse.tailnet.authKeyFile = \"${store}";
    };
    relativeSecret = {
      config.services.gatehouse = {
        routes = example;
        environmentFile = "gatehouse.env";
      };
      assertion = "give an absolute path outside the Nix store";
    };
    secretWrittenIntoRoutes = {
      config.services.gatehouse.routes = lib.recursiveUpdate example { tailnet.auth_key_file = "/etc/ts-authkey"; };
      assertion = "services.gatehouse.routes.tailnet.auth_key_file is set by the module; use services.gatehouse.tailnet.authKeyFile";
    };
    listenWrittenIntoRoutes = {
      config.services.gatehouse.routes = lib.recursiveUpdate example { cloudflare.listen = "127.0.0.1:9000"; };
      assertion = "routes.cloudflare.listen is set by the module";
    };
    keyAndOAuth = {
      config.services.gatehouse = {
        routes = example;
        tailnet.authKeyFile = "/run/keys/a";
        tailnet.clientSecretFile = "/run/keys/b";
      };
      assertion = "set authKeyFile or clientSecretFile, not both";
    };
    oidcWithoutSecret = {
      config.services.gatehouse.routes = example // {
        oidc = {
          issuer = "https://auth.example.com/realms/home";
          client_id = "gatehouse";
        };
      };
      assertion = "oidc.clientSecretFile is not";
    };
    secretWithoutOidc = {
      config.services.gatehouse = {
        routes = example;
        oidc.clientSecretFile = "/run/keys/oidc";
      };
      assertion = "add issuer and client_id there";
    };
    tailnetOffButConfigured = {
      config.services.gatehouse = {
        routes = example;
        tailnet.enable = false;
      };
      assertion = "tailnet.enable is false, but tailnet settings";
    };
    configInExtraArgs = {
      config.services.gatehouse = {
        routes = example;
        extraArgs = [
          "-config=/tmp/other.hcl"
        ];
      };
      assertion = "do not pass -config";
    };

    # Flags: extraArgs go last; the other flags are always spelt out.
    flags = {
      config.services.gatehouse = {
        routes = example;
        logLevel = "debug";
        extraArgs = [ "-access-log=true" ];
        watchdogSec = null;
      };
      checks = c: [
        (is "ExecStart" (sc c).ExecStart
          ''"${exe}" "run" "-config" "/etc/gatehouse/routes.hcl" "-log-format" "text" "-log-level" "debug" "-access-log=true"''
        )
        (is "no WatchdogSec" ((sc c) ? WatchdogSec) false)
      ];
    };
    # The module's state default gives way to the table's own value.
    cookieKeyFileKept = {
      config.services.gatehouse = {
        routes = example // {
          oidc = {
            issuer = "https://auth.example.com/realms/home";
            client_id = "gatehouse";
            cookie_key_file = "/var/lib/gatehouse/keys/cookies";
          };
        };
        oidc.clientSecretFile = "/run/keys/oidc";
      };
      checks = c: [
        (is "failed assertions" (failedAssertions c) [ ])
        (has "cookie_key_file" c.services.gatehouse.renderedRoutes ''cookie_key_file = "/var/lib/gatehouse/keys/cookies"'')
      ];
    };
    shutdownTimeout = {
      config.services.gatehouse.routes = example // {
        server.shutdown_timeout = "2m";
      };
      checks = c: [ (is "TimeoutStopSec" (sc c).TimeoutStopSec "2m 15s") ];
    };
  };

  # Definitions that must not evaluate, and the error each must give; run
  # one by one by .ci/nix-checks, which matches the message.
  typeErrors = lib.mapAttrs (
    _: config:
    let
      c = eval config;
    in
    [
      (sc c).ExecStart
      c.services.gatehouse.renderedRoutes
      c.services.cloudflared.tunnels
    ]
  ) {
    portAsString.services.gatehouse = {
      routes = example;
      cloudflare.port = "8750";
    };
    portOutOfRange.services.gatehouse = {
      routes = example;
      cloudflare.port = 70000;
    };
    misspeltAccess.services.gatehouse.routes = lib.recursiveUpdate example {
      route.radarr.tailnet.access = "admn";
    };
    familyOnTheTailnet.services.gatehouse.routes = lib.recursiveUpdate example {
      route.radarr.tailnet.access = "family";
    };
    routeWithoutBackend.services.gatehouse.routes = {
      domain = "example.com";
      route.x.tailnet.access = "admin";
    };
    # An ingress rule of one's own for a host gatehouse now serves (left
    # over from one rule per service) conflicts with the module's.
    leftoverIngressRule = {
      imports = [ (withTunnel "home") ];
      services.cloudflared.tunnels.home.ingress."photos.example.com" = "http://localhost:2283";
      services.gatehouse = {
        routes = example;
        cloudflare.tunnel = "home";
      };
    };
    secretAsNixPath.services.gatehouse = {
      routes = example;
      tailnet.authKeyFile = ./stubs.nix;
    };
  };

  run =
    name: case:
    let
      c = eval case.config;
      failed = failedAssertions c;
      problems =
        if case ? assertion then
          lib.optional (!lib.any (lib.hasInfix case.assertion) failed)
            "expected a failed assertion containing \"${case.assertion}\", got ${builtins.toJSON failed}"
        else
          map (k: "${k.what}: got ${builtins.toJSON k.got}, want ${builtins.toJSON k.want}") (
            lib.filter (k: k.got != k.want) (case.checks c)
          );
    in
    map (p: "${name}: ${p}") problems;

  # flake.nix, with nixpkgs stood in for: its outputs have the promised
  # shape, the version reaches `gatehouse version`, and the module it exports
  # defaults to its own build.
  flake =
    let
      outputs = (import ../../flake.nix).outputs {
        self = outputs // {
          shortRev = "abc1234";
        };
        nixpkgs = {
          inherit lib;
          legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: flakePkgs);
        };
      };
      flakePkgs = pkgs // {
        stdenv = pkgs.stdenv // {
          hostPlatform.system = "x86_64-linux";
        };
        # Just enough of callPackage and buildGo126Module for package.nix.
        callPackage =
          f: args:
          import f (
            {
              inherit lib;
              buildGo126Module = a: fakeDrv "gatehouse-${a.version}" // { inherit (a) version vendorHash ldflags subPackages; };
            }
            // args
          );
      };
      pkg = outputs.packages.x86_64-linux.gatehouse;
      moduleEval = lib.evalModules {
        modules = base ++ [
          outputs.nixosModules.default
          { _module.args.pkgs = flakePkgs; }
          {
            services.gatehouse = {
              enable = true;
              routes = example;
            };
          }
        ];
      };
    in
    [
      (is "flake outputs" (lib.attrNames outputs) [
        "checks"
        "nixosModules"
        "overlays"
        "packages"
      ])
      (is "packages" (lib.attrNames outputs.packages.aarch64-linux) [
        "default"
        "gatehouse"
      ])
      (is "checks" (lib.attrNames outputs.checks.x86_64-linux) [
        "example-routes"
        "module-eval"
        "package"
        "vm"
      ])
      (is "version" pkg.version "0.0.0-abc1234")
      (is "version stamped" (lib.elem "-X main.version=0.0.0-abc1234" pkg.ldflags) true)
      (is "vendorHash" pkg.vendorHash (lib.fileContents ../vendorHash.sri))
      (is "vendorHash is SRI" (builtins.match "sha256-[A-Za-z0-9+/]{43}=" pkg.vendorHash != null) true)
      (is "subPackages" pkg.subPackages [ "." ])
      (is "overlay" (outputs.overlays.default flakePkgs flakePkgs).gatehouse.name "gatehouse-0.0.0-abc1234")
      (is "module's package" moduleEval.config.services.gatehouse.package.name "gatehouse-0.0.0-abc1234")
      (is "module's ExecStart" (lib.hasPrefix ''"${outputs.packages.x86_64-linux.gatehouse}/bin/gatehouse" "run"''
        moduleEval.config.systemd.services.gatehouse.serviceConfig.ExecStart
      ) true)
    ];

  problems =
    lib.concatLists (lib.mapAttrsToList run cases)
    ++ map (k: "flake: ${k.what}: got ${builtins.toJSON k.got}, want ${builtins.toJSON k.want}") (
      lib.filter (k: k.got != k.want) flake
    );
in
{
  inherit cases typeErrors;

  report =
    if problems == [ ] then
      map (n: "ok ${n}") (lib.attrNames cases ++ [ "flake" ])
    else
      throw ("services.gatehouse evaluation tests failed:\n  " + lib.concatStringsSep "\n  " problems);

  # The README's example host, as written there.
  readmeExample =
    let
      c =
        (lib.evalModules {
          # The flake input: its module, and its source for the example table.
          specialArgs.inputs.gatehouse = {
            nixosModules.default = ../module.nix;
            outPath = toString ../..;
          };
          modules = base ++ [
            { _module.args.pkgs = pkgs; }
            (/. + readme)
          ];
        }).config;
    in
    {
      failedAssertions = failedAssertions c;
      warnings = warningsOf c;
      routes = c.services.gatehouse.renderedRoutes;
      ingress = c.services.cloudflared.tunnels.${c.services.gatehouse.cloudflare.tunnel}.ingress;
      loadCredential = (sc c).LoadCredential;
    };

  # package.nix on a nixpkgs without Go 1.26 must say what to do
  # (.ci/nix-checks matches the message).
  withoutGo126 = (import ../package.nix { inherit lib; }).name;

  # What nixos_flags_test.go feeds to the real binary.
  generated =
    let
      c = eval matrixConfig;
    in
    {
      execStart = (sc c).ExecStart;
      execReload = (sc c).ExecReload;
      routes = c.services.gatehouse.renderedRoutes;
      inherit exe;
    };
}
