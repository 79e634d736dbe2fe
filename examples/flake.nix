{
  description = "harmonia-ci example: a small DAG with successes, a deliberate failure and a build that depends on it";

  # No inputs: nothing needs downloading, and the jobs use only /bin/sh.
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
    in
    {
      checks = forAllSystems (system: import ./jobs.nix { inherit system; });
    };
}
