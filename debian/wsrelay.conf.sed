# debian/wsrelay.conf.sed: docs/wsrelay.conf (every option, commented out) -> the package's
# /etc/wsrelay/wsrelay.conf, with a header and four settings in effect, each with its reason.
# debian/rules checks that all four took.
1i\
# /etc/wsrelay/wsrelay.conf: what wsrelay.service runs with (a conffile of the Debian\
# package: your edits survive upgrades). After an edit: `systemctl restart wsrelay` (the\
# old process drains its clients first, --drain-time); a renewed TLS pair needs only\
# `systemctl reload wsrelay`. The service's log: `journalctl -u wsrelay`.\
#\
# Four settings are in effect, the package's choices, each with its reason above it: host,\
# port, www and max-clients. The rest are commented out at their defaults.\
#
s|^# Every option is below, commented out, with its default\.$|# Every option is below with its default, commented out but for the four above.|
s|^# host = 0\.0\.0\.0$|# The package listens on loopback only until you choose otherwise: installing a package\
# should not open a new service on every interface, and a proxy on this machine (nginx or\
# haproxy, for TLS and a known name) is the usual front. To serve the network directly,\
# set host to :: (IPv6 and IPv4) and allow-origin to the names browsers use.\
host = 127.0.0.1|
s|^# port = 7071$|# A port below 1024 needs CAP_NET_BIND_SERVICE, which the unit does not grant.\
port = 7071|
s|^# www = /usr/share/wsrelay/www$|# The package's page, named rather than found beside the binary.\
www = /usr/share/wsrelay/www|
s|^# max-clients = 1024$|# The unit's LimitNOFILE=2080 is 2 x 1024 + 32 (per client a socket and a file being\
# sent, plus the server's own): raise both together (`systemctl edit wsrelay`, [Service]\
# LimitNOFILE=2 x N + 32), or the server warns that the descriptor limit is low.\
max-clients = 1024|
