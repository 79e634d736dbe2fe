# The example jobs: a small graph of derivations that needs nothing but /bin/sh, so it
# evaluates and builds without nixpkgs or network access.
#
#   greeting ──> library ──> app ──────> release
#       └──────────────────────^            ^
#                library ──> flaky-test ────┘   (fails on purpose: release is dep-failed)
#   docs                                         (a leaf on its own)
#
# As a plain file it is evaluated for the current system; flake.nix imports it per system.
{ system ? builtins.currentSystem }:
let
  # Builders run with an empty PATH: only /bin/sh and its built-ins are at hand.
  prelude = ''
    set -e
    say() { echo "[$name] $*"; }
    # About a second of work, without `sleep` (not a shell built-in).
    work() { i=0; while [ "$i" -lt 800000 ]; do i=$((i + 1)); done; }
  '';
  job = name: inputs: script:
    builtins.derivation ({
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" (prelude + script) ];
    } // inputs);
in
rec {
  greeting = job "greeting" { } ''
    say "choosing words"
    work
    echo "hello, world" > "$out"
    say "wrote the greeting"
  '';

  library = job "library" { inherit greeting; } ''
    read -r text < "$greeting"
    say "wrapping the greeting: $text"
    work
    echo "library(\"$text\")" > "$out"
    say "library ready"
  '';

  app = job "app" { inherit greeting library; } ''
    read -r text < "$greeting"
    read -r lib < "$library"
    say "linking app against $lib"
    work
    echo "app: $lib says $text" > "$out"
    say "app built"
  '';

  docs = job "docs" { } ''
    say "rendering 3 pages"
    work
    echo "docs: index, usage, faq" > "$out"
    say "docs rendered"
  '';

  flaky-test = job "flaky-test" { inherit library; } ''
    read -r lib < "$library"
    say "running 3 tests against $lib"
    work
    say "test greeting-format ... ok"
    say "test library-wraps ... ok"
    say "test mirror-latency ... FAILED"
    echo "[$name] expected the mirror to answer within 1s; this test fails on purpose to show a failed build" >&2
    exit 1
  '';

  release = job "release" { inherit app flaky-test; } ''
    say "packaging $app"
    work
    echo "release of $app" > "$out"
  '';
}
