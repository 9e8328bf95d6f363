# gatehouse for Nix users: the package, the NixOS module and its tests, all
# defined in nixos/ (this file only re-exports them).
#
#   nix build                         the gatehouse binary
#   nix flake check                   package, evaluation tests, rendered table, VM test
#   inputs.gatehouse.nixosModules.default   in your NixOS configuration
#
# No flake.lock is committed yet: the first `nix flake lock` on a machine
# with network access writes it.
{
  description = "gatehouse: one gateway for every door of a home server";

  # buildGo126Module comes with nixos-unstable (and releases after 26.05).
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
          eval = import ./nixos/tests/eval.nix { inherit lib; };
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
