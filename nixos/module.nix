# services.gatehouse: the gateway as a hardened systemd service.
#
#   imports = [ ./nixos/module.nix ];        # or the flake's nixosModules.default
#   services.gatehouse = {
#     enable = true;
#     routes = import ./nixos/examples/routes.nix;   # or routesFile = ./routes.hcl;
#     tailnet.authKeyFile = "/run/keys/ts-authkey";
#     cloudflare.tunnel = "home";
#   };
#
# Secrets never enter the Nix store: files named by *File options are
# handed to the unit with LoadCredential, and routes.hcl refers to them as
# /run/credentials/gatehouse.service/<name>.
#
# The Cloudflare door is a loopback listener (cloudflared dials out) and the
# tailnet door is tsnet in user space, which also only dials out: neither
# opens a port. The LAN door (lan.enable) listens on the home network;
# lan.openFirewall opens its ports on lan.interfaces only.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.gatehouse;
  gl = import ./lib.nix;
  inherit (lib)
    mkOption
    mkIf
    types
    literalExpression
    optional
    optionalAttrs
    ;

  credentialDir = "/run/credentials/gatehouse.service";
  stateDir = "/var/lib/gatehouse";
  # DynamicUser's name: the host's `gatehouse` command runs `tokens` and
  # `login` under the same name, and so with the same UID (nixos/lib.nix).
  user = "gatehouse";
  etcPath = "/etc/gatehouse/routes.hcl";

  credentials = lib.filterAttrs (_: f: f != null) {
    "ts-authkey" = cfg.tailnet.authKeyFile;
    "ts-client-secret" = cfg.tailnet.clientSecretFile;
    "oidc-client-secret" = cfg.oidc.clientSecretFile;
    "lan-dns-token" = if cfg.lan.enable then cfg.lan.dnsTokenFile else null;
  };
  credential = name: "${credentialDir}/${name}";

  # --- the route table ------------------------------------------------------

  freeform = types.attrsOf types.anything;
  access =
    levels: description:
    mkOption {
      type = types.enum levels;
      inherit description;
    };
  accessOrNull =
    levels: description:
    mkOption {
      type = types.nullOr (types.enum levels);
      default = null;
      inherit description;
    };
  tailnetLevels = [
    "admin"
    "members"
    "closed"
  ];
  cloudflareLevels = [
    "family"
    "app"
    "closed"
  ];

  routeModule = {
    freeformType = freeform;
    options = {
      backend = mkOption {
        type = types.str;
        example = "http://127.0.0.1:2283";
        description = "Where the route's requests go: `http://127.0.0.1:PORT`, `https://…` or `unix:///run/app.sock`.";
      };
      tailnet = mkOption {
        default = null;
        description = "The route on the tailnet door (`host`, `node`, `identity_headers` as in routes.hcl). Null: closed there.";
        type = types.nullOr (
          types.submodule {
            freeformType = freeform;
            options.access = access tailnetLevels "Who may pass the tailnet door.";
          }
        );
      };
      cloudflare = mkOption {
        default = null;
        description = "The route on the Cloudflare door (`groups` as in routes.hcl). Null: closed there.";
        type = types.nullOr (
          types.submodule {
            freeformType = freeform;
            options.host = mkOption {
              type = types.str;
              example = "photos";
              description = "Public hostname; a name without a dot gets `domain` appended.";
            };
            options.access = access cloudflareLevels "Who may pass the Cloudflare door.";
          }
        );
      };
      lan = mkOption {
        default = null;
        description = "The route on the LAN door (`host`, `groups`, `max_body` as in routes.hcl; the host defaults to the Cloudflare host). Null: closed there.";
        type = types.nullOr (
          types.submodule {
            freeformType = freeform;
            options.access = access cloudflareLevels "Who may pass the LAN door.";
          }
        );
      };
      path = mkOption {
        default = { };
        description = "Access below a path prefix, per door.";
        example = literalExpression ''{ "/api/".cloudflare = "app"; }'';
        type = types.attrsOf (
          types.submodule {
            freeformType = freeform;
            options.tailnet = accessOrNull tailnetLevels "Access below this prefix on the tailnet door.";
            options.cloudflare = accessOrNull cloudflareLevels "Access below this prefix on the Cloudflare door.";
            options.lan = accessOrNull cloudflareLevels "Access below this prefix on the LAN door.";
          }
        );
      };
    };
  };

  routesModule = {
    freeformType = freeform;
    options = {
      domain = mkOption {
        type = types.str;
        example = "example.com";
        description = "Your public domain; a bare Cloudflare host `photos` means `photos.<domain>`.";
      };
      route = mkOption {
        type = types.attrsOf (types.submodule routeModule);
        default = { };
        description = "One attribute per service, named like the route (one DNS label).";
      };
    };
  };

  # Settings the module owns: the door address, the node and where secrets
  # and state live. Merged over the user's table.
  listen =
    if lib.hasInfix ":" cfg.cloudflare.address then
      "[${cfg.cloudflare.address}]:${toString cfg.cloudflare.port}"
    else
      "${cfg.cloudflare.address}:${toString cfg.cloudflare.port}";
  # Where cloudflared connects: a wildcard listener is reached on loopback.
  doorURL =
    let
      host =
        {
          "0.0.0.0" = "127.0.0.1";
          "::" = "[::1]";
        }
        .${cfg.cloudflare.address} or (
          if lib.hasInfix ":" cfg.cloudflare.address then "[${cfg.cloudflare.address}]" else cfg.cloudflare.address
        );
    in
    "http://${host}:${toString cfg.cloudflare.port}";

  userRoutes = if cfg.routes == null then { } else gl.clean cfg.routes;
  managed = {
    cloudflare.listen = listen;
  }
  // optionalAttrs cfg.tailnet.enable {
    tailnet = {
      hostname = cfg.tailnet.hostname;
      state_dir = "${stateDir}/tailnet";
    }
    // optionalAttrs (cfg.tailnet.controlURL != null) { control_url = cfg.tailnet.controlURL; }
    // optionalAttrs (cfg.tailnet.authKeyFile != null) { auth_key_file = credential "ts-authkey"; }
    // optionalAttrs (cfg.tailnet.clientSecretFile != null) {
      client_secret_file = credential "ts-client-secret";
    };
  }
  // optionalAttrs (cfg.oidc.clientSecretFile != null) {
    oidc.client_secret_file = credential "oidc-client-secret";
  }
  // optionalAttrs cfg.lan.enable {
    lan = {
      listen = cfg.lan.listen;
      state_dir = "${stateDir}/lan";
      dns_token_file = credential "lan-dns-token";
      certificates = cfg.lan.certificates;
    }
    // optionalAttrs (cfg.lan.redirectListen != [ ]) { redirect_listen = cfg.lan.redirectListen; }
    // optionalAttrs (cfg.lan.networks != null) { networks = cfg.lan.networks; }
    // optionalAttrs (cfg.lan.acmeEmail != null) { acme_email = cfg.lan.acmeEmail; }
    // optionalAttrs (cfg.lan.acmeCA != null) { acme_ca = cfg.lan.acmeCA; };
  };
  # Defaults that must point into the state directory: the table itself
  # sits in the read-only store, and relative paths are taken from there.
  stateDefaults = optionalAttrs (userRoutes ? oidc) {
    oidc.cookie_key_file = "${stateDir}/oidc/cookie.keys";
  };
  effectiveRoutes = lib.recursiveUpdate (lib.recursiveUpdate stateDefaults userRoutes) managed;
  routesText = if cfg.routes == null then null else gl.toHCL effectiveRoutes;

  # Keys of `routes` the module sets itself, with the option to use instead.
  ownedKeys = [
    {
      path = [ "cloudflare" "listen" ];
      use = "services.gatehouse.cloudflare.address and .port";
    }
    {
      path = [ "tailnet" "hostname" ];
      use = "services.gatehouse.tailnet.hostname";
    }
    {
      path = [ "tailnet" "state_dir" ];
      use = "nothing: the state lives in ${stateDir} (StateDirectory)";
    }
    {
      path = [ "tailnet" "control_url" ];
      use = "services.gatehouse.tailnet.controlURL";
    }
    {
      path = [ "tailnet" "auth_key_file" ];
      use = "services.gatehouse.tailnet.authKeyFile (handed over with LoadCredential)";
    }
    {
      path = [ "tailnet" "client_secret_file" ];
      use = "services.gatehouse.tailnet.clientSecretFile (handed over with LoadCredential)";
    }
    {
      path = [ "lan" ];
      use = "services.gatehouse.lan (listen, redirectListen, networks, dnsTokenFile, acmeEmail, acmeCA, certificates)";
    }
    {
      path = [ "oidc" "client_secret_file" ];
      use = "services.gatehouse.oidc.clientSecretFile (handed over with LoadCredential)";
    }
  ];

  # --- where the unit reads the table -----------------------------------------

  # A table that is part of the system (rendered, or a file in the store) is
  # linked at /etc/gatehouse/routes.hcl, so ExecStart does not change with
  # it: a new table reloads the running gateway instead of restarting it.
  # A plain path outside the store (routesFile = "/var/lib/…") is read where
  # it is, and edits are picked up by gatehouse's own file watcher.
  inStore =
    f: builtins.isPath f || lib.hasPrefix "${builtins.storeDir}/" (toString f);
  tableSource =
    if cfg.routes != null then
      pkgs.writeText "gatehouse-routes.hcl" routesText
    else if cfg.routesFile != null && inStore cfg.routesFile then
      cfg.routesFile
    else
      null;
  # `gatehouse check` at build time: a bad table fails nixos-rebuild, not the
  # running service.
  checkedTable =
    if tableSource != null && cfg.checkRoutes then
      pkgs.runCommand "gatehouse-routes.hcl" { } ''
        ${lib.getExe cfg.package} check -config ${tableSource}
        cp ${tableSource} "$out"
      ''
    else
      tableSource;
  configFile = if tableSource != null then etcPath else toString cfg.routesFile;

  commands = gl.commands {
    exe = lib.getExe cfg.package;
    inherit configFile;
    inherit (cfg) logFormat logLevel accessLog extraArgs;
    kill = "${pkgs.coreutils}/bin/kill";
  };

  # --- privileges ---------------------------------------------------------------

  lanPorts = lib.unique (
    lib.filter (p: p != null) (map gl.listenPort (cfg.lan.listen ++ cfg.lan.redirectListen))
  );
  ports =
    [ cfg.cloudflare.port ]
    ++ optional (gl.listenPort (effectiveRoutes.metrics.listen or null) != null) (
      gl.listenPort effectiveRoutes.metrics.listen
    )
    ++ lib.optionals cfg.lan.enable lanPorts;
  lowPort = lib.any (p: p < 1024) ports;

  # --- the host's gatehouse command ---------------------------------------------

  cli = pkgs.writeShellScriptBin "gatehouse" (
    gl.cliWrapper {
      exe = lib.getExe cfg.package;
      inherit configFile user stateDir;
      systemdRun = "${config.systemd.package}/bin/systemd-run";
      id = "${pkgs.coreutils}/bin/id";
    }
  );

  # --- the Cloudflare tunnel ----------------------------------------------------

  # The tunnel named by cloudflare.tunnel, and the others defined. The
  # module's own ingress rules define the named one even when nothing else
  # does: a misspelt name makes a tunnel without credentials, which
  # cloudflared cannot run, and every public host then falls through to
  # the tunnel's 404.
  tunnels = config.services.cloudflared.tunnels or { };
  tunnel = if cfg.cloudflare.tunnel == null then { } else tunnels.${cfg.cloudflare.tunnel} or { };
  set = n: (tunnel.${n} or null) != null;
  tunnelRuns = set "credentialsFile" || set "tokenFile" || set "token";
  otherTunnels = lib.filter (n: n != cfg.cloudflare.tunnel) (lib.attrNames tunnels);
  tokenTunnel = set "tokenFile" || set "token";
  # cloudflared finds a tunnel named by its name through Cloudflare's API,
  # which needs the account certificate; by its UUID it needs only the
  # credentials file (cloudflare/cloudflared cmd/cloudflared/tunnel/subcommands.go,
  # `tunnel run`). nixpkgs' module passes the attribute name as the tunnel.
  isUUID = n: builtins.match "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" n != null;
  hasCertificate = set "certificateFile" || (config.services.cloudflared.certificateFile or null) != null;
  hostList = lib.concatStringsSep ", " cfg.cloudflare.hostnames;

  secretFiles = lib.filterAttrs (_: f: f != null) {
    "services.gatehouse.tailnet.authKeyFile" = cfg.tailnet.authKeyFile;
    "services.gatehouse.tailnet.clientSecretFile" = cfg.tailnet.clientSecretFile;
    "services.gatehouse.oidc.clientSecretFile" = cfg.oidc.clientSecretFile;
    "services.gatehouse.lan.dnsTokenFile" = if cfg.lan.enable then cfg.lan.dnsTokenFile else null;
    "services.gatehouse.environmentFile" = cfg.environmentFile;
  };
in
{
  options.services.gatehouse = {
    enable = lib.mkEnableOption "gatehouse, the gateway at every door of this server";

    package = mkOption {
      type = types.package;
      default = pkgs.gatehouse or (pkgs.callPackage ./package.nix { });
      defaultText = literalExpression "pkgs.gatehouse or (pkgs.callPackage ./nixos/package.nix { })";
      description = "The gatehouse package.";
    };

    routes = mkOption {
      type = types.nullOr (types.submodule routesModule);
      default = null;
      example = literalExpression "import ./nixos/examples/routes.nix";
      description = ''
        The route table, written in Nix with routes.hcl's own names and
        rendered to HCL (see docs/routes-hcl.md). Blocks are
        attrsets; `route` and `path` are keyed by their label. The module sets
        `cloudflare.listen`, the tailnet node settings and the credential
        paths itself. Checked with `gatehouse check` at build time.
        Exactly one of `routes` and `routesFile`.
      '';
    };

    routesFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/var/lib/gatehouse/routes.hcl";
      description = ''
        A routes.hcl written by hand. A Nix path (`./routes.hcl`) is copied to
        the store, checked at build time and linked at ${etcPath}; a string
        path outside the store is read where it is and gatehouse reloads it
        when it changes. Refer to secrets as
        `${credentialDir}/ts-authkey`, `…/ts-client-secret` and
        `…/oidc-client-secret`, and put state in ${stateDir}: `tailnet { state_dir =
        "${stateDir}/tailnet" }`, `oidc { cookie_key_file = "${stateDir}/oidc/cookie.keys" }`.
        Exactly one of `routes` and `routesFile`.
      '';
    };

    checkRoutes = mkOption {
      type = types.bool;
      default = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
      defaultText = literalExpression "pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform";
      description = "Run `gatehouse check` on the route table when the system is built.";
    };

    cli.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Put a `gatehouse` command on the system's PATH that reads the
        service's route table (so `gatehouse routes`, `gatehouse check` need
        no -config) and runs `gatehouse tokens` and `gatehouse login` as the
        service's user on its state directory (as root: `sudo gatehouse
        tokens list`).
      '';
    };

    cloudflare = {
      address = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Address of the Cloudflare door, the plain-HTTP listener cloudflared forwards to. Keep it on loopback.";
      };
      port = mkOption {
        type = types.port;
        default = 8750;
        description = "Port of the Cloudflare door. Below 1024 the unit keeps CAP_NET_BIND_SERVICE (and no private user namespace).";
      };
      tunnel = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "home";
        description = ''
          Name of a `services.cloudflared.tunnels` entry. Every Cloudflare
          hostname of the table gets an ingress rule to the door there, so
          hostnames are written once.
        '';
      };
      hostnames = mkOption {
        type = types.listOf types.str;
        default = if cfg.routes != null then gl.cloudflareHosts effectiveRoutes else [ ];
        defaultText = literalExpression "every cloudflare.host of services.gatehouse.routes, fully qualified";
        description = "Hostnames the tunnel sends to the door. Derived from `routes`; set it yourself with `routesFile`.";
      };
    };

    tailnet = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run the tailnet door (embedded Tailscale nodes). Without a key or OAuth secret it stays off and says so.";
      };
      hostname = mkOption {
        type = types.str;
        default = "gatehouse";
        description = "Name of the shared tailnet node.";
      };
      controlURL = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://headscale.example.com";
        description = "Control server, e.g. your Headscale. Null: Tailscale's.";
      };
      authKeyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/keys/ts-authkey";
        description = "File (outside the Nix store) with a reusable, pre-authorized auth key. Passed with LoadCredential.";
      };
      clientSecretFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "File (outside the Nix store) with an OAuth client secret, instead of an auth key; needs `routes.tailnet.tags`.";
      };
    };

    lan = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Run the LAN door: HTTPS on the home network for the same public hostnames, with a Let's Encrypt certificate by DNS-01 (docs/lan.md).";
      };
      listen = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.168.1.10:443" ];
        description = "HTTPS addresses of the LAN door (host:port). A port below 1024 keeps CAP_NET_BIND_SERVICE.";
      };
      redirectListen = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.168.1.10:80" ];
        description = "Plain-HTTP addresses that only redirect to HTTPS.";
      };
      networks = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        example = [ "192.168.1.0/24" ];
        description = "Client networks the door accepts; others are refused before TLS. Null: every private range (docs/lan.md).";
      };
      interfaces = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "enp3s0" ];
        description = "Interfaces on which openFirewall opens the LAN door's ports.";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open the ports of listen and redirectListen in the firewall, on `interfaces` only.";
      };
      dnsTokenFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/keys/cloudflare-dns-token";
        description = "File (outside the Nix store) with a Cloudflare API token with Zone.DNS:Edit, for the DNS-01 challenge. Passed with LoadCredential.";
      };
      acmeEmail = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Contact address of the ACME account.";
      };
      acmeCA = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "letsencrypt-staging";
        description = "`letsencrypt` (null: the default), `letsencrypt-staging` or an ACME directory URL.";
      };
      certificates = mkOption {
        type = types.enum [
          "wildcard"
          "per_name"
        ];
        default = "wildcard";
        description = "One `*.<domain>` certificate, or one per host.";
      };
    };

    oidc.clientSecretFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/keys/oidc-client-secret";
      description = "File (outside the Nix store) with the OIDC client secret for family sign-in; `routes.oidc` holds the rest.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/keys/gatehouse.env";
      description = "EnvironmentFile for the unit (outside the Nix store), e.g. with TS_AUTHKEY=….";
    };

    logFormat = mkOption {
      type = types.enum gl.logFormats;
      default = "text";
      description = "`-log-format`.";
    };
    logLevel = mkOption {
      type = types.enum gl.logLevels;
      default = "info";
      description = "`-log-level`.";
    };
    accessLog = mkOption {
      type = types.bool;
      default = true;
      description = "One log line per request (`-access-log`).";
    };
    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "More arguments for `gatehouse run`.";
    };

    watchdogSec = mkOption {
      type = types.nullOr types.str;
      default = "30s";
      description = "systemd's WatchdogSec; gatehouse pings at half of it. Null turns the watchdog off.";
    };

    renderedRoutes = mkOption {
      type = types.nullOr types.str;
      internal = true;
      readOnly = true;
      default = routesText;
      description = "The routes.hcl rendered from `routes` (for tests and inspection).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.routes == null) != (cfg.routesFile == null);
        message =
          if cfg.routes == null then
            "services.gatehouse: set the route table, either services.gatehouse.routes (in Nix) or services.gatehouse.routesFile (a routes.hcl)."
          else
            "services.gatehouse: routes and routesFile are both set; keep exactly one of them (routes in Nix, or a routes.hcl in routesFile).";
      }
      {
        assertion = cfg.tailnet.authKeyFile == null || cfg.tailnet.clientSecretFile == null;
        message = "services.gatehouse.tailnet: set authKeyFile or clientSecretFile, not both.";
      }
      {
        assertion =
          cfg.tailnet.enable
          || (
            cfg.tailnet.authKeyFile == null
            && cfg.tailnet.clientSecretFile == null
            && cfg.tailnet.controlURL == null
            && !(userRoutes ? tailnet)
          );
        message = "services.gatehouse.tailnet.enable is false, but tailnet settings (authKeyFile, clientSecretFile, controlURL or routes.tailnet) are set; remove them or enable the tailnet door.";
      }
      {
        assertion = cfg.routes == null || (cfg.oidc.clientSecretFile != null) == (userRoutes ? oidc);
        message =
          if userRoutes ? oidc then
            "services.gatehouse.routes.oidc is set, but services.gatehouse.oidc.clientSecretFile is not: family sign-in needs the client secret (handed over with LoadCredential)."
          else
            "services.gatehouse.oidc.clientSecretFile is set, but services.gatehouse.routes.oidc is not: add issuer and client_id there.";
      }
      {
        assertion = cfg.cloudflare.tunnel == null || cfg.cloudflare.hostnames != [ ];
        message = "services.gatehouse.cloudflare.tunnel is set, but there are no Cloudflare hostnames to route: add a route with a cloudflare block, or (with routesFile) list them in services.gatehouse.cloudflare.hostnames.";
      }
      {
        assertion = !cfg.lan.enable || (cfg.lan.listen != [ ] && cfg.lan.dnsTokenFile != null);
        message = "services.gatehouse.lan.enable needs lan.listen (e.g. [ \"192.168.1.10:443\" ]) and lan.dnsTokenFile (a Cloudflare API token with Zone.DNS:Edit).";
      }
      {
        assertion = !cfg.lan.openFirewall || cfg.lan.interfaces != [ ];
        message = "services.gatehouse.lan.openFirewall opens ports on lan.interfaces only; name the home network's interfaces there.";
      }
      {
        assertion = cfg.cloudflare.tunnel == null || tunnelRuns;
        message =
          "services.gatehouse.cloudflare.tunnel = \"${toString cfg.cloudflare.tunnel}\", but services.cloudflared.tunnels.\"${toString cfg.cloudflare.tunnel}\" has no credentialsFile or tokenFile, so cloudflared cannot run it and every public host would answer 404. "
          + (
            if otherTunnels == [ ] then
              "Define the tunnel: create it with `cloudflared tunnel create` and set its credentialsFile (the JSON file it wrote), or set tokenFile."
            else
              "Tunnels defined: ${lib.concatMapStringsSep ", " (n: "\"${n}\"") otherTunnels}; name one of them, or give this one a credentialsFile or tokenFile."
          );
      }
      {
        assertion = !lib.any (a: lib.hasPrefix "-config" a || lib.hasPrefix "--config" a) cfg.extraArgs;
        message = "services.gatehouse.extraArgs: do not pass -config; use routes or routesFile (ExecReload checks the same file).";
      }
    ]
    ++ map (k: {
      assertion = !(lib.hasAttrByPath k.path userRoutes);
      message = "services.gatehouse.routes.${lib.concatStringsSep "." k.path} is set by the module; use ${k.use}.";
    }) ownedKeys
    ++ lib.mapAttrsToList (opt: f: {
      assertion = lib.hasPrefix "/" f && !lib.hasPrefix "${builtins.storeDir}/" f;
      message = "${opt} = \"${f}\": give an absolute path outside the Nix store (the store is world-readable); the file is read when the service starts.";
    }) secretFiles;

    warnings =
      optional (cfg.cloudflare.tunnel != null && !config.services.cloudflared.enable) "services.gatehouse.cloudflare.tunnel = \"${cfg.cloudflare.tunnel}\" adds ingress rules to services.cloudflared, but services.cloudflared.enable is false: nothing forwards to the Cloudflare door."
      ++ optional (cfg.cloudflare.tunnel != null && tokenTunnel) "services.cloudflared.tunnels.\"${cfg.cloudflare.tunnel}\" runs with a token, and cloudflared run with a token ignores the ingress rules written on this host (services.gatehouse wrote one per public host). Set them in Cloudflare's dashboard instead: Zero Trust > Networks > Tunnels > your tunnel > Public Hostname, one per host (${hostList}), each with service ${doorURL}. Or run the tunnel with credentialsFile, so the rules written here apply."
      ++ optional (
        cfg.cloudflare.tunnel != null && set "credentialsFile" && !isUUID cfg.cloudflare.tunnel && !hasCertificate
      ) "services.cloudflared.tunnels.\"${cfg.cloudflare.tunnel}\" is named by name, not by its UUID: cloudflared then looks the tunnel up with the account certificate (certificateFile), which is not set, and fails. Name the tunnel by the UUID `cloudflared tunnel list` shows (services.cloudflared.tunnels.\"<UUID>\" and services.gatehouse.cloudflare.tunnel = \"<UUID>\"), or set certificateFile.";

    environment.systemPackages = mkIf cfg.cli.enable [ cli ];

    networking.firewall.interfaces = mkIf (cfg.lan.enable && cfg.lan.openFirewall) (
      lib.genAttrs cfg.lan.interfaces (_: {
        allowedTCPPorts = lanPorts;
      })
    );

    environment.etc = mkIf (checkedTable != null) {
      "gatehouse/routes.hcl".source = checkedTable;
    };

    systemd.services = {
      gatehouse = {
        description = "gatehouse, the gateway at every door of this server";
        documentation = [ "file:${configFile}" ];
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        # A new table is a reload (the running gateway swaps it in without
        # dropping a connection); a new binary or unit is a restart, done as
        # one step rather than stop-then-start.
        reloadTriggers = optional (checkedTable != null) checkedTable;
        stopIfChanged = false;

        serviceConfig = {
          Type = "notify";
          NotifyAccess = "main";
          ExecStart = commands.execStart;
          ExecReload = commands.execReload;
          Restart = "on-failure";
          RestartSec = "5s";
          # Running requests get server.shutdown_timeout; systemd waits that
          # long plus a margin (time spans written one after the other add up).
          TimeoutStopSec = "${userRoutes.server.shutdown_timeout or "30s"} 15s";

          DynamicUser = true;
          User = user;
          StateDirectory = "gatehouse"; # tsnet state, cookie keys, device tokens
          StateDirectoryMode = "0700";
          WorkingDirectory = stateDir;
          LoadCredential = lib.mapAttrsToList (name: file: "${name}:${file}") credentials;
          UMask = "0077";

          CapabilityBoundingSet = if lowPort then [ "CAP_NET_BIND_SERVICE" ] else [ "" ];
          NoNewPrivileges = true;
          # A capability held inside a private user namespace does not reach
          # the host's network namespace, so a port below 1024 needs the host's.
          PrivateUsers = !lowPort;
          PrivateTmp = true;
          PrivateDevices = true;
          DevicePolicy = "closed";
          ProtectSystem = "strict";
          ProtectHome = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectProc = "invisible";
          # /proc/net/route is hidden too; tailscale reads routes over netlink.
          ProcSubset = "pid";
          RestrictAddressFamilies = [
            "AF_INET"
            "AF_INET6"
            "AF_UNIX"
            "AF_NETLINK"
          ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          RemoveIPC = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
          ];
          SystemCallErrorNumber = "EPERM";
        }
        // optionalAttrs lowPort { AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ]; }
        // optionalAttrs (cfg.watchdogSec != null) { WatchdogSec = cfg.watchdogSec; }
        // optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
      };
    }
    // optionalAttrs (cfg.cloudflare.tunnel != null && config.services.cloudflared.enable) {
      # The tunnel forwards to the door; start it once the door listens.
      "cloudflared-tunnel-${cfg.cloudflare.tunnel}".after = [ "gatehouse.service" ];
    };

    services.cloudflared.tunnels = mkIf (cfg.cloudflare.tunnel != null) {
      ${cfg.cloudflare.tunnel}.ingress = lib.genAttrs cfg.cloudflare.hostnames (_: doorURL);
    };
  };
}
