# gatehouse for Nix users: the package, the NixOS module and its tests, all
# defined in nixos/ (this file only re-exports them).
#
#   nix build                         the gatehouse binary
#   nix flake check                   package, evaluation tests, rendered table, VM test
#   inputs.gatehouse.nixosModules.default   in your NixOS configuration
#
# Which nixpkgs: one with buildGo126Module (pkgs/development/compilers/go/1.26.nix)
# whose Go is at least go.mod's `go` line (1.26.6) — nixos-unstable; NixOS
# 26.05 and older have no Go 1.26. With `inputs.nixpkgs.follows = "nixpkgs"`
# in your flake (the README's deployment), your system's nixpkgs builds
# gatehouse and must be such a nixpkgs; nixos/package.nix says so when it
# is not.
#
# No flake.lock is committed: it needs the narHash of a nixpkgs revision,
# which only fetching that revision gives, and this repository is built
# where nothing can be fetched. The first `nix flake lock` (or any `nix
# build`) on a machine with network access writes it; commit that file.
{
  description = "gatehouse: one gateway for every door of a home server";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = "0.0.0-${self.shortRev or self.dirtyShortRev or "dirty"}";
      gatehouseFor = pkgs: pkgs.callPackage ./nixos/package.nix { inherit version; };
    in
    {
      packages = forAllSystems (pkgs: {
        gatehouse = gatehouseFor pkgs;
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.gatehouse;
      });

      overlays.default = final: _prev: { gatehouse = gatehouseFor final; };

      # The module, with this flake's build as the default package (built
      # with the system's own nixpkgs).
      nixosModules.default =
        { pkgs, ... }:
        {
          imports = [ ./nixos/module.nix ];
          services.gatehouse.package = lib.mkDefault (gatehouseFor pkgs);
        };
      nixosModules.gatehouse = self.nixosModules.default;

      checks = forAllSystems (
        pkgs:
        let
          gatehouse = gatehouseFor pkgs;
          gl = import ./nixos/lib.nix;
          eval = import ./nixos/tests/eval.nix {
            inherit lib;
            cloudflaredModule = "${nixpkgs}/nixos/modules/services/networking/cloudflared.nix";
          };
        in
        {
          package = gatehouse;

          # The module's evaluation cases (as .ci/nix-checks runs them).
          module-eval = pkgs.writeText "gatehouse-module-eval" (lib.concatLines eval.report);

          # The reference table, written in Nix, passes `gatehouse check`.
          example-routes =
            pkgs.runCommand "gatehouse-example-routes" { } ''
              ${lib.getExe gatehouse} check -config ${pkgs.writeText "routes.hcl" (gl.toHCL (import ./nixos/examples/routes.nix))} > $out
            '';

          vm = pkgs.testers.runNixOSTest ./nixos/test.nix;
        }
      );
    };
}
