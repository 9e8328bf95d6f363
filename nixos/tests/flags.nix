# Command lines and a route table from nixos/lib.nix, the code the module
# runs, for nixos_flags_test.go. Plain builtins: evaluates with a bare
# nix-instantiate, no nixpkgs needed.
#
#   nix-instantiate --eval --strict --json nixos/tests/flags.nix \
#     --argstr exe /path/to/gatehouse --argstr configFile /path/to/routes.hcl
{
  exe,
  configFile,
  # For the host's gatehouse command (gl.cliWrapper).
  systemdRun ? "/run/current-system/sw/bin/systemd-run",
  id ? "id",
  stateDir ? "/var/lib/gatehouse",
}:
let
  gl = import ../lib.nix;
  commands =
    a:
    gl.commands (
      {
        inherit exe configFile;
        kill = "/run/current-system/sw/bin/kill";
      }
      // a
    );
  # Every log format with every log level, with and without the access log.
  matrix = builtins.concatMap (
    logFormat:
    builtins.concatMap (logLevel: [
      {
        name = "${logFormat}-${logLevel}";
        value = commands { inherit logFormat logLevel; };
      }
      {
        name = "${logFormat}-${logLevel}-no-access-log";
        value = commands {
          inherit logFormat logLevel;
          accessLog = false;
        };
      }
    ]) gl.logLevels
  ) gl.logFormats;
in
{
  commands = builtins.listToAttrs matrix // {
    defaults = commands { };
    extra-args = commands {
      accessLog = false;
      extraArgs = [
        "-access-log=true"
        "-log-level=warn"
      ];
    };
  };
  # The gatehouse command the module puts on PATH.
  cli = gl.cliWrapper {
    inherit exe configFile systemdRun id stateDir;
    user = "gatehouse";
  };
  # The reference table (nixos/examples/routes.nix) as the module renders it.
  routes = gl.toHCL (import ../examples/routes.nix);
}
