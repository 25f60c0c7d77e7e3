#!/bin/sh
# Set up Debian's postfix package as a loopback-only MTA for `bench/run.py --mta` (run as root).
#
#   bench/postfix-setup.sh [start|stop]     (default: start; safe to run again)
#
# 127.0.0.1:10025  STARTTLS offered, no AUTH (testmail, batch, probe)
# 127.0.0.1:10587  STARTTLS required, then AUTH PLAIN/LOGIN against Cyrus sasldb (testmail-auth)
# Mail to example.test is accepted, queued as Postfix always does, and discarded by the discard
# transport: nothing leaves the machine. PIPELINING and CHUNKING stay on, as Postfix has them.
# The certificate is self-signed for 127.0.0.1/localhost; the bench verifies it with --mta-ca.
# Nothing here is fetched from anywhere but the distribution's own packages.
set -eu

SMTP_PORT=${SMTP_PORT:-10025}
AUTH_PORT=${AUTH_PORT:-10587}
BENCH_USER=${BENCH_USER:-bench}
DIR=/etc/postfix/jcsh-bench
MYHOST=mta.bench.test

if [ "${1:-start}" = stop ]; then
    postfix stop 2>/dev/null || true
    exit 0
fi

if ! command -v postfix >/dev/null || ! command -v saslpasswd2 >/dev/null || ! command -v swaks >/dev/null; then
    echo "postfix-setup: installing postfix, swaks and Cyrus SASL from the distribution"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix swaks sasl2-bin libsasl2-modules
fi

mkdir -p "$DIR"
chmod 755 "$DIR"

# A self-signed EC P-256 certificate for the loopback names; it is its own CA for --mta-ca.
if [ ! -s "$DIR/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
        -subj "/O=jcsh bench MTA/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
    chmod 600 "$DIR/key.pem"
    chmod 644 "$DIR/cert.pem"
fi

# The bench login: a random password in a root-only file, read by bench/run.py --mta-password-file.
if [ ! -s "$DIR/password" ]; then
    umask 077
    openssl rand -hex 16 > "$DIR/password"
    umask 022
fi
saslpasswd2 -p -c -u "$MYHOST" "$BENCH_USER" < "$DIR/password"
chgrp sasl /etc/sasldb2
chmod 640 /etc/sasldb2
adduser --quiet postfix sasl >/dev/null 2>&1 || usermod -a -G sasl postfix

mkdir -p /etc/postfix/sasl
cat > /etc/postfix/sasl/smtpd.conf <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: /etc/sasldb2
EOF

postconf -e \
    "myhostname = $MYHOST" \
    "mydestination =" \
    "inet_interfaces = 127.0.0.1" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "relay_domains = example.test" \
    "transport_maps = inline:{ example.test=discard: }" \
    "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" \
    "smtpd_tls_cert_file = $DIR/cert.pem" \
    "smtpd_tls_key_file = $DIR/key.pem" \
    "smtpd_tls_security_level = may" \
    "smtpd_tls_loglevel = 0" \
    "smtpd_sasl_type = cyrus" \
    "smtpd_sasl_path = smtpd" \
    "cyrus_sasl_config_path = /etc/postfix/sasl" \
    "smtpd_sasl_local_domain = $MYHOST" \
    "smtpd_sasl_auth_enable = no" \
    "maillog_file = /var/log/postfix.log" \
    "compatibility_level = 3.6"

# Only the two loopback services listen: the stock port-25 service is commented out.
postconf -M# smtp/inet 2>/dev/null || true
postconf -M "127.0.0.1:$SMTP_PORT/inet=127.0.0.1:$SMTP_PORT inet n - n - - smtpd"
postconf -M "127.0.0.1:$AUTH_PORT/inet=127.0.0.1:$AUTH_PORT inet n - n - - smtpd"
postconf -P \
    "127.0.0.1:$AUTH_PORT/inet/smtpd_tls_security_level=encrypt" \
    "127.0.0.1:$AUTH_PORT/inet/smtpd_sasl_auth_enable=yes" \
    "127.0.0.1:$AUTH_PORT/inet/smtpd_tls_auth_only=yes"
postconf -M postlog/unix-dgram >/dev/null 2>&1 ||
    postconf -M "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"

newaliases
postfix check
if postfix status >/dev/null 2>&1; then postfix reload; else postfix start; fi

cat <<EOF
postfix-setup: Postfix listening on 127.0.0.1:$SMTP_PORT (STARTTLS) and 127.0.0.1:$AUTH_PORT (STARTTLS + AUTH)
run the bench against it with:
  .venv/bin/python bench/run.py --mta 127.0.0.1:$SMTP_PORT --mta-ca $DIR/cert.pem \\
      --mta-auth-port $AUTH_PORT --mta-user $BENCH_USER --mta-password-file $DIR/password
EOF
