#!/bin/sh
# The `certs` one-shot of docker-compose.yml: creates, where absent, what the fleet needs to reach
# Temporal over mutual TLS and to encrypt its payloads. Run again, it changes nothing; delete a
# file (or a volume) to have it made anew on the next `docker compose up`.
#
#   compose-certs.sh <root> <client>...
#
# <root>/ca        the CA (ca.key never leaves this directory: no long-running service mounts it)
# <root>/temporal  the server's certificate (SAN `temporal`; it also presents it as a client to its
#                  own frontend, hence both serverAuth and clientAuth) and ca.crt
# <root>/<client>  a client certificate (CN <client>) and ca.crt, for each <client> named
# <root>/codec     codec.key, the payload key every harmonia-ci role shares (harmonia-ci keys codec)
#
# Each directory is a volume of its own, mounted read-only into its one consumer. Files belong to
# uid 1000: the `node` user of the harmonia-ci image and the `temporal` user of Temporal's images.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 <root> <client>..." >&2; exit 2; }
root=$1
shift
owner=1000:1000
days=825
umask 077

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ca=$root/ca
mkdir -p "$ca"
if [ ! -f "$ca/ca.key" ] || [ ! -f "$ca/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=harmonia-ci fleet CA" \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    -keyout "$ca/ca.key" -out "$ca/ca.crt" 2>/dev/null
  echo "certs: created the CA"
fi

# issue <directory> <common name> <extendedKeyUsage> [subjectAltName]
issue() {
  dir=$root/$1
  mkdir -p "$dir"
  if [ ! -f "$dir/tls.key" ] || [ ! -f "$dir/tls.crt" ]; then
    {
      echo 'basicConstraints=critical,CA:FALSE'
      echo 'keyUsage=critical,digitalSignature'
      echo "extendedKeyUsage=$3"
      [ -z "${4:-}" ] || echo "subjectAltName=$4"
    } > "$work/ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
      -keyout "$dir/tls.key" -out "$work/csr" 2>/dev/null
    openssl x509 -req -in "$work/csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$work/ext" -out "$dir/tls.crt" 2>/dev/null
    echo "certs: issued $1 ($2)"
  fi
  # The CA certificate beside each pair, so that a volume is all its consumer needs.
  cp "$ca/ca.crt" "$dir/ca.crt"
  chown "$owner" "$dir/tls.key" "$dir/tls.crt" "$dir/ca.crt"
  chmod 0400 "$dir/tls.key"
  chmod 0444 "$dir/tls.crt" "$dir/ca.crt"
}

issue temporal temporal serverAuth,clientAuth DNS:temporal
for client in "$@"; do
  issue "$client" "$client" clientAuth
done

mkdir -p "$root/codec"
if [ ! -f "$root/codec/codec.key" ]; then
  harmonia-ci keys codec "$root/codec/codec.key"
  echo "certs: created the payload codec key"
fi
chown "$owner" "$root/codec/codec.key"
chmod 0400 "$root/codec/codec.key"
