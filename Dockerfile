# One image for every harmonia-ci role: `harmonia-ci api`, `harmonia-ci worker <role>`,
# `harmonia-ci migrate`. Nix comes from Debian (nix-bin) so that builders and the
# evaluator have nix-store, nix-daemon and nix-instantiate without the upstream installer.
FROM node:20-bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends nix-bin zstd git ca-certificates tini openssl busybox-static \
 && rm -rf /var/lib/apt/lists/*

# No build users and no sandbox by default: Nix's sandbox needs namespaces that Docker's default
# seccomp profile and capabilities deny. A privileged builder can set NIX_CONFIG="sandbox = true":
# busybox is the sandbox's /bin/sh, and a sandbox that cannot be set up fails the build rather
# than running it without (README, "Nix's sandbox in containers").
# The store lives on a volume mounted at /nix, kept across restarts.
RUN mkdir -p /etc/nix \
 && printf '%s\n' \
      'build-users-group =' \
      'sandbox = false' \
      'sandbox-fallback = false' \
      'sandbox-paths = /bin/sh=/bin/busybox' \
      'experimental-features = nix-command flakes' \
      > /etc/nix/nix.conf

WORKDIR /opt/harmonia-ci
COPY package.json package-lock.json ./
# tsx is a runtime dependency: the sources run as TypeScript, no build step.
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force
COPY . .
RUN ln -s /opt/harmonia-ci/bin/harmonia-ci.mjs /usr/local/bin/harmonia-ci
# The state directory, writable by the unprivileged `node` user (uid 1000) that the roles
# without a nix-daemon run as (docker-compose.yml).
RUN mkdir -p /var/lib/harmonia-ci && chown node:node /var/lib/harmonia-ci

ENV NODE_ENV=production
# tini reaps the nix subprocesses that workers start and forwards SIGTERM.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/harmonia-ci/bin/harmonia-ci.mjs"]
CMD ["api"]
