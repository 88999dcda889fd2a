#!/usr/bin/env bash
# make_nonbt.sh - remake the corpus of real non-BitTorrent traffic
# (tests/corpus/nonbt/): each kind is made by real programs from Debian
# talking between two network namespaces, captured with tcpdump on the veth
# between them, and listed in MANIFEST with the program versions and the
# commands that made it. `make test` (tests/e2e/classify_corpus.sh) runs
# every capture through `itrackerctl classify`: none may hold a BitTorrent
# flow.
#
# Usage: tools/corpus/make_nonbt.sh [OUTDIR] [KIND...]   (as root)
# Installs the programs it needs (tools/corpus/packages.txt) when missing.
# Addresses are those of maps/example.netmap's AS 64500 and AS 64502, so
# classify --map maps/example.netmap calls every flow inter_as.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/tests/corpus/nonbt}")
shift || true
ONLY=("$@")
E2E=corpus$$
# shellcheck source=../../tests/e2e/lib/netns.sh
source "$ROOT/tests/e2e/lib/netns.sh"
e2e_require_root

mapfile -t PKGS < <(grep -v '^#' "$ROOT/tools/corpus/packages.txt" | tr -s ' \n' '\n' | sed '/^$/d')
missing=()
for p in "${PKGS[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	# policy-rc.d: the packages' daemons are not started system-wide.
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
fi

A=${E2E}a
B=${E2E}b
IP_A=10.10.1.2 # a-metro1, AS 64500
IP_B=10.30.0.2 # c, AS 64502
IP6_A=fd00:10:1::2
IP6_B=fd00:30::2
e2e_netns "$A"
e2e_netns "$B"
e2e_veth "$A" va "$B" vb
e2e_addr "$A" va "$IP_A/16" "$IP6_A/64"
e2e_addr "$B" vb "$IP_B/16" "$IP6_B/64"
ip -n "$A" route add 10.30.0.0/16 dev va
ip -n "$B" route add 10.10.0.0/16 dev vb
ip -n "$A" -6 route add fd00:30::/64 dev va
ip -n "$B" -6 route add fd00:10:1::/64 dev vb
# Multicast (mDNS) leaves through the veth.
ip -n "$A" route add 224.0.0.0/4 dev va
ip -n "$B" route add 224.0.0.0/4 dev vb
W=$E2E_TMP
mkdir -p "$OUT"
MANIFEST=$OUT/MANIFEST
TMP_MANIFEST=$W/MANIFEST.new
: >"$TMP_MANIFEST"

ina() { ip netns exec "$A" "$@"; }
inb() { ip netns exec "$B" "$@"; }
bg_b() { e2e_bg ip netns exec "$B" "$@"; }
bg_a() { e2e_bg ip netns exec "$A" "$@"; }
version() { dpkg-query -W -f='${Package} ${Version}' "$1"; }

wait_port() { # ns proto port
	for _ in $(seq 100); do
		ip netns exec "$1" ss -ln"${2:0:1}" | grep -q ":$3 " && return 0
		sleep 0.1
	done
	echo "corpus: nothing listens on $2 port $3" >&2
	return 1
}

CAP_PID=""
cap_start() { # name
	CAP_NAME=$1
	# Not through a shell function: $! must be tcpdump itself.
	ip netns exec "$A" tcpdump -B 16384 -i va -s 0 -U -w "$W/$1.pcap" 'tcp or udp' \
		2>"$W/$1.tcpdump.err" &
	CAP_PID=$!
	for _ in $(seq 50); do
		grep -q "listening on" "$W/$1.tcpdump.err" && return 0
		sleep 0.1
	done
	echo "corpus: tcpdump did not start" >&2
	return 1
}

cap_stop() { # programs... (for the manifest); the commands come on stdin
	sleep 1.5 # tcpdump retires its buffer blocks after 1 s
	kill -INT "$CAP_PID"
	wait "$CAP_PID" || true
	local n
	n=$(tcpdump -r "$W/$CAP_NAME.pcap" 2>/dev/null | wc -l)
	if ((n == 0)); then
		echo "corpus: $CAP_NAME captured nothing" >&2
		return 1
	fi
	cp "$W/$CAP_NAME.pcap" "$OUT/$CAP_NAME.pcap"
	{
		printf '%s: %d packets, %d bytes; made with' "$CAP_NAME.pcap" "$n" \
			"$(stat -c %s "$OUT/$CAP_NAME.pcap")"
		for p in "$@"; do printf ' %s;' "$(version "$p")"; done
		printf '\n'
		sed 's/^/    /'
	} >>"$TMP_MANIFEST"
	echo "corpus: $CAP_NAME ($n packets)"
}

wanted() { # kind
	((${#ONLY[@]} == 0)) && return 0
	local k
	for k in "${ONLY[@]}"; do [[ $k == "$1" ]] && return 0; done
	return 1
}

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=corpus.test -days 3650 \
	-keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
head -c 300000 /dev/urandom >"$W/file.bin"

# ---- media ------------------------------------------------------------------
if wanted rtp_pcmu; then
	bg_b gst-launch-1.0 -q udpsrc address=$IP_B port=5004 ! fakesink
	sleep 0.5
	cap_start rtp_pcmu
	ina gst-launch-1.0 -q audiotestsrc num-buffers=120 ! audioconvert ! audioresample ! \
		mulawenc ! rtppcmupay ! udpsink host=$IP_B port=5004
	cap_stop gstreamer1.0-plugins-good <<EOF
B: gst-launch-1.0 udpsrc address=$IP_B port=5004 ! fakesink
A: gst-launch-1.0 audiotestsrc num-buffers=120 ! audioconvert ! audioresample ! mulawenc ! rtppcmupay ! udpsink host=$IP_B port=5004
EOF
fi

if wanted rtp_opus_rtcp; then
	bg_b gst-launch-1.0 -q rtpbin name=rb \
		udpsrc address=$IP_B port=5006 caps="application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96" ! rb.recv_rtp_sink_0 \
		rb. ! rtpopusdepay ! fakesink \
		udpsrc address=$IP_B port=5007 ! rb.recv_rtcp_sink_0 \
		rb.send_rtcp_src_0 ! udpsink host=$IP_A port=5011 sync=false async=false
	sleep 0.5
	cap_start rtp_opus_rtcp
	ina gst-launch-1.0 -q rtpbin name=rb \
		audiotestsrc num-buffers=300 ! audioconvert ! audioresample ! opusenc ! rtpopuspay ! rb.send_rtp_sink_0 \
		rb.send_rtp_src_0 ! udpsink host=$IP_B port=5006 \
		rb.send_rtcp_src_0 ! udpsink host=$IP_B port=5007 sync=false async=false \
		udpsrc address=$IP_A port=5011 ! rb.recv_rtcp_sink_0
	cap_stop gstreamer1.0-plugins-good libopus0 <<EOF
B: gst-launch-1.0 rtpbin name=rb udpsrc port=5006 caps=...OPUS... ! rb.recv_rtp_sink_0 rb. ! rtpopusdepay ! fakesink udpsrc port=5007 ! rb.recv_rtcp_sink_0 rb.send_rtcp_src_0 ! udpsink host=$IP_A port=5011
A: gst-launch-1.0 rtpbin name=rb audiotestsrc num-buffers=300 ! ... ! opusenc ! rtpopuspay ! rb.send_rtp_sink_0 rb.send_rtp_src_0 ! udpsink port=5006 rb.send_rtcp_src_0 ! udpsink port=5007 udpsrc port=5011 ! rb.recv_rtcp_sink_0
EOF
fi

if wanted rtp_theora; then
	bg_b gst-launch-1.0 -q udpsrc address=$IP_B port=5008 ! fakesink
	sleep 0.5
	cap_start rtp_theora
	ina gst-launch-1.0 -q videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240 ! \
		theoraenc ! rtptheorapay ! udpsink host=$IP_B port=5008
	cap_stop gstreamer1.0-plugins-base gstreamer1.0-plugins-good <<EOF
B: gst-launch-1.0 udpsrc port=5008 ! fakesink
A: gst-launch-1.0 videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240 ! theoraenc ! rtptheorapay ! udpsink host=$IP_B port=5008
EOF
fi

# A SIP call with RTP/RTCP media between two baresip user agents: B answers
# on its own (answermode=auto), A dials and hangs up (BYE) when -t ends it.
# ausine is the microphone (a 440 Hz tone; it runs at 48 kHz only, hence
# Opus), aufile the speaker; no account registers (regint=0), so the call
# goes straight from UA to UA as in a LAN or a trunk.
if wanted sip_rtp; then
	for side in a b; do
		ip=$IP_A
		[[ $side == b ]] && ip=$IP_B
		mkdir -p "$W/baresip_$side"
		cat >"$W/baresip_$side/config" <<EOF
poll_method epoll
sip_listen $ip:5060
audio_source ausine,440
audio_player aufile,$W/baresip_$side/heard.wav
audio_alert aufile,/dev/null
audio_srate 48000
audio_channels 2
opus_bitrate 12000
rtp_ports 10000-10020
module_path /usr/lib/baresip/modules
module opus.so
module ausine.so
module aufile.so
module account.so
module menu.so
EOF
		echo "<sip:$side@$ip>;regint=0;answermode=auto;audio_codecs=opus" >"$W/baresip_$side/accounts"
		: >"$W/baresip_$side/contacts"
	done
	bg_b baresip -f "$W/baresip_b" -t 8 </dev/null >"$W/baresip_b.log" 2>&1
	wait_port "$B" udp 5060
	cap_start sip_rtp
	timeout 20 ip netns exec "$A" baresip -f "$W/baresip_a" -e "/dial sip:b@$IP_B" -t 3 \
		</dev/null >"$W/baresip_a.log" 2>&1
	grep -q "Call established" "$W/baresip_a.log" || {
		echo "corpus: the baresip call was not established" >&2
		cat "$W/baresip_a.log" >&2
		exit 1
	}
	cap_stop baresip-core <<EOF
B: baresip -f DIR_B -t 8   (config: sip_listen $IP_B:5060, audio_source ausine,440, audio_player aufile, opus 12 kbit/s; account <sip:b@$IP_B>;regint=0;answermode=auto;audio_codecs=opus)
A: baresip -f DIR_A -e "/dial sip:b@$IP_B" -t 3   (the same for <sip:a@$IP_A>: INVITE, 180, 200, ACK, 3 s of Opus RTP and RTCP both ways, BYE)
EOF
fi

# ---- STUN, TURN, DTLS, VPNs ---------------------------------------------------
if wanted stun || wanted turn_channel || wanted turn_indication; then
	bg_b turnserver -n --no-cli --no-tls --no-dtls --listening-ip=$IP_B --relay-ip=$IP_B \
		--listening-port=3478 --min-port=49152 --max-port=49300 --lt-cred-mech --user=corpus:secret \
		--realm=corpus.test --log-file=stdout --no-stdout-log --pidfile="$W/turn.pid" \
		--allow-loopback-peers --cli-password=x
	bg_b turnutils_peer -L $IP_B -p 3480
	wait_port "$B" udp 3478
fi
if wanted stun; then
	cap_start stun
	for _ in 1 2 3; do ina turnutils_stunclient -p 3478 $IP_B >/dev/null; done
	cap_stop coturn <<EOF
B: turnserver -n --no-cli --no-tls --no-dtls --listening-ip=$IP_B --relay-ip=$IP_B --lt-cred-mech --user=corpus:secret --realm=corpus.test
A: turnutils_stunclient -p 3478 $IP_B   (three times)
EOF
fi
if wanted turn_channel; then
	cap_start turn_channel
	timeout 30 ip netns exec "$A" turnutils_uclient -u corpus -w secret -e $IP_B -r 3480 -n 60 -m 2 -l 170 \
		-p 3478 $IP_B >/dev/null
	cap_stop coturn <<EOF
B: turnserver (as for stun); turnutils_peer -L $IP_B -p 3480
A: turnutils_uclient -u corpus -w secret -e $IP_B -r 3480 -n 60 -m 2 -l 170 -p 3478 $IP_B   (TURN relay, ChannelData)
EOF
fi
if wanted turn_indication; then
	cap_start turn_indication
	timeout 30 ip netns exec "$A" turnutils_uclient -c -u corpus -w secret -e $IP_B -r 3480 -n 40 -m 1 -l 300 \
		-p 3478 $IP_B >/dev/null
	cap_stop coturn <<EOF
A: turnutils_uclient -c -u corpus -w secret -e $IP_B -r 3480 -n 40 -m 1 -l 300 -p 3478 $IP_B   (Send/Data indications)
EOF
fi

if wanted dtls; then
	bg_b openssl s_server -dtls -accept $IP_B:4433 -cert "$W/cert.pem" -key "$W/key.pem" -quiet
	wait_port "$B" udp 4433
	cap_start dtls
	{
		for i in $(seq 20); do echo "dtls application record $i $(head -c 300 /dev/urandom | base64 -w0)"; sleep 0.05; done
		sleep 0.5
	} | timeout 20 ip netns exec "$A" openssl s_client -dtls -connect $IP_B:4433 -quiet >/dev/null 2>&1 || true
	cap_stop openssl <<EOF
B: openssl s_server -dtls -accept $IP_B:4433 -cert cert.pem -key key.pem -quiet
A: (20 lines of base64) | openssl s_client -dtls -connect $IP_B:4433 -quiet
EOF
fi

if wanted wireguard; then
	# Interface names differ: wg finds a userspace interface by its socket
	# in /var/run/wireguard, which the namespaces share.
	for side in a b; do
		ns=$A
		[[ $side == b ]] && ns=$B
		# This kernel has no wireguard module: the userspace implementation,
		# which wants to be told that this is on purpose.
		ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
			wireguard-go "wg$side$$" >"$W/wg-$side.log" 2>&1 &
		E2E_PIDS+=($!)
	done
	for _ in $(seq 50); do
		ina ip link show "wga$$" >/dev/null 2>&1 && inb ip link show "wgb$$" >/dev/null 2>&1 && break
		sleep 0.1
	done
	(umask 077 && wg genkey >"$W/wga.key" && wg genkey >"$W/wgb.key")
	ina wg set "wga$$" private-key "$W/wga.key" listen-port 51820 peer "$(wg pubkey <"$W/wgb.key")" \
		endpoint $IP_B:51820 allowed-ips 10.99.0.2/32
	inb wg set "wgb$$" private-key "$W/wgb.key" listen-port 51820 peer "$(wg pubkey <"$W/wga.key")" \
		endpoint $IP_A:51820 allowed-ips 10.99.0.1/32
	ina ip addr add 10.99.0.1/24 dev "wga$$"
	inb ip addr add 10.99.0.2/24 dev "wgb$$"
	ina ip link set "wga$$" up
	inb ip link set "wgb$$" up
	cap_start wireguard
	ina ping -q -c 20 -i 0.1 -s 1000 10.99.0.2 >/dev/null
	ina ping -q -c 20 -i 0.1 10.99.0.2 >/dev/null
	cap_stop wireguard-go wireguard-tools <<EOF
A, B: wireguard-go wgX; wg set wgX private-key K listen-port 51820 peer PUB endpoint PEER:51820 allowed-ips 10.99.0.x/32
A: ping -c 20 -i 0.1 -s 1000 10.99.0.2; ping -c 20 -i 0.1 10.99.0.2   (through the tunnel)
EOF
fi

if wanted openvpn; then
	for side in srv cli; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=$side" -keyout "$W/$side.key" -out "$W/$side.crt" 2>/dev/null
	done
	fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
	bg_b openvpn --dev tun --proto udp --local $IP_B --lport 1194 --tls-server --dh none \
		--cert "$W/srv.crt" --key "$W/srv.key" --peer-fingerprint "$(fp "$W/cli.crt")" \
		--ifconfig 10.98.0.1 10.98.0.2 --verb 0
	cap_start openvpn
	bg_a openvpn --dev tun --proto udp --remote $IP_B 1194 --nobind --tls-client \
		--cert "$W/cli.crt" --key "$W/cli.key" --peer-fingerprint "$(fp "$W/srv.crt")" \
		--ifconfig 10.98.0.2 10.98.0.1 --verb 0
	for _ in $(seq 100); do ina ping -c 1 -W 1 10.98.0.1 >/dev/null 2>&1 && break; sleep 0.2; done
	ina ping -q -c 20 -i 0.1 -s 800 10.98.0.1 >/dev/null
	cap_stop openvpn <<EOF
B: openvpn --dev tun --proto udp --local $IP_B --lport 1194 --tls-server --dh none --cert srv.crt --key srv.key --peer-fingerprint FP --ifconfig 10.98.0.1 10.98.0.2
A: openvpn --dev tun --proto udp --remote $IP_B 1194 --nobind --tls-client --cert cli.crt --key cli.key --peer-fingerprint FP --ifconfig 10.98.0.2 10.98.0.1; ping -c 20 -s 800 10.98.0.1
EOF
fi

# ---- QUIC ---------------------------------------------------------------------
if wanted quic; then
	mkdir -p "$W/htdocs" "$W/dl"
	cp "$W/file.bin" "$W/htdocs/file.bin"
	bg_b gtlsserver --htdocs="$W/htdocs" -q $IP_B 4434 "$W/key.pem" "$W/cert.pem"
	wait_port "$B" udp 4434
	cap_start quic
	timeout 30 ip netns exec "$A" gtlsclient -q --exit-on-all-streams-close --download="$W/dl" \
		$IP_B 4434 "https://$IP_B:4434/file.bin" >/dev/null 2>&1 || true
	cmp "$W/file.bin" "$W/dl/file.bin"
	cap_stop ngtcp2-server ngtcp2-client <<EOF
B: gtlsserver --htdocs=DIR $IP_B 4434 key.pem cert.pem   (ngtcp2's example server)
A: gtlsclient --exit-on-all-streams-close --download=DIR $IP_B 4434 https://$IP_B:4434/file.bin   (300 kB, HTTP/3)
EOF
fi

# ---- naming, time, management -------------------------------------------------
if wanted dns; then
	bg_b dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
		--listen-address=$IP_B --listen-address=$IP6_B --pid-file="$W/dnsmasq.pid" \
		--address=/www.corpus.test/10.30.0.80 --address=/www.corpus.test/fd00:30::80 \
		--txt-record=corpus.test,"a text record" --mx-host=corpus.test,mail.corpus.test,10 --user=root
	wait_port "$B" udp 53
	cap_start dns
	for q in "www.corpus.test A" "www.corpus.test AAAA" "corpus.test TXT" "corpus.test MX" \
		"nothing.corpus.test A"; do
		# shellcheck disable=SC2086
		ina dig +tries=1 +time=2 @$IP_B $q >/dev/null
		# shellcheck disable=SC2086
		ina dig +tries=1 +time=2 @$IP6_B $q >/dev/null
	done
	ina dig +tcp +time=2 @$IP_B www.corpus.test A >/dev/null
	cap_stop dnsmasq-base bind9-dnsutils <<EOF
B: dnsmasq -k --no-resolv --no-hosts --listen-address=$IP_B,$IP6_B --address=/www.corpus.test/... --txt-record=... --mx-host=...
A: dig @$IP_B and @$IP6_B for A, AAAA, TXT, MX and an unknown name; dig +tcp once
EOF
fi

if wanted mdns; then
	for side in a b; do
		mkdir -p "$W/avahi-$side/services"
		cat >"$W/avahi-$side/avahi-daemon.conf" <<EOF
[server]
host-name=corpus-$side
use-ipv4=yes
use-ipv6=yes
enable-dbus=no
[publish]
publish-workstation=yes
publish-hinfo=yes
EOF
		cat >"$W/avahi-$side/services/http.service" <<EOF
<?xml version="1.0" standalone='no'?>
<service-group><name>corpus web $side</name>
<service><type>_http._tcp</type><port>80</port></service></service-group>
EOF
	done
	# Each daemon with its own /run/avahi-daemon (its pid file).
	for side in a b; do
		ns=$A
		[[ $side == b ]] && ns=$B
		ip netns exec "$ns" unshare -m sh -c "mount -t tmpfs none /run/avahi-daemon 2>/dev/null ||
			{ mkdir -p /run/avahi-daemon && mount -t tmpfs none /run/avahi-daemon; }
			mount --bind '$W/avahi-$side/services' /etc/avahi/services
			exec avahi-daemon -f '$W/avahi-$side/avahi-daemon.conf' --no-chroot --no-drop-root --no-rlimits" \
			>/dev/null 2>&1 &
		E2E_PIDS+=($!)
		[[ $side == a ]] && cap_start mdns
	done
	sleep 8
	cap_stop avahi-daemon <<EOF
A, B: avahi-daemon -f avahi-daemon.conf (host-name corpus-a/corpus-b, a _http._tcp service each, enable-dbus=no) --no-chroot --no-drop-root; 8 s of probing and announcing
EOF
fi

if wanted ntp; then
	cat >"$W/chrony-b.conf" <<EOF
allow all
local stratum 8
bindaddress $IP_B
cmdport 0
pidfile $W/chrony-b.pid
EOF
	cat >"$W/chrony-a.conf" <<EOF
server $IP_B iburst minpoll 0 maxpoll 0
cmdport 0
pidfile $W/chrony-a.pid
EOF
	bg_b chronyd -d -x -f "$W/chrony-b.conf"
	wait_port "$B" udp 123
	cap_start ntp
	timeout 30 ip netns exec "$A" chronyd -Q -t 20 -f "$W/chrony-a.conf" >/dev/null 2>&1 || true
	cap_stop chrony <<EOF
B: chronyd -d -x -f (allow all; local stratum 8; bindaddress $IP_B)
A: chronyd -Q -t 20 -f (server $IP_B iburst minpoll 0 maxpoll 0)
EOF
fi

if wanted snmp; then
	cat >"$W/snmpd.conf" <<EOF
agentaddress udp:$IP_B:161
rocommunity public default
sysLocation corpus lab
sysContact nobody@corpus.test
EOF
	bg_b snmpd -f -Lo -C -c "$W/snmpd.conf" -p "$W/snmpd.pid"
	wait_port "$B" udp 161
	cap_start snmp
	ina snmpwalk -v2c -c public -On $IP_B 1.3.6.1.2.1.1 >/dev/null 2>&1
	ina snmpget -v1 -c public -On $IP_B 1.3.6.1.2.1.1.1.0 1.3.6.1.2.1.1.5.0 >/dev/null 2>&1
	ina snmpbulkwalk -v2c -c public -On $IP_B 1.3.6.1.2.1.2 >/dev/null 2>&1
	cap_stop snmpd snmp <<EOF
B: snmpd -f -C -c (agentaddress udp:$IP_B:161; rocommunity public)
A: snmpwalk -v2c -c public $IP_B 1.3.6.1.2.1.1 (system); snmpget -v1 ...sysDescr.0 sysName.0; snmpbulkwalk -v2c ... interfaces
EOF
fi

if wanted netbios; then
	printf '[global]\nworkgroup = CORPUS\n' >"$W/smb.conf"
	cap_start netbios
	for name in FILESERVER PRINTER '*'; do
		ina nmblookup -s "$W/smb.conf" -U $IP_B -R "$name" >/dev/null 2>&1 || true
	done
	ina nmblookup -s "$W/smb.conf" -A $IP_B >/dev/null 2>&1 || true
	cap_stop samba-common-bin <<EOF
A: nmblookup -U $IP_B -R FILESERVER | PRINTER | '*'; nmblookup -A $IP_B   (NetBIOS name queries and a node status query, unanswered)
EOF
fi

if wanted syslog; then
	bg_b socat -u UDP-RECV:514,bind=$IP_B /dev/null
	wait_port "$B" udp 514
	cap_start syslog
	for i in $(seq 15); do
		ina logger -n $IP_B -P 514 -d --rfc5424 -t corpus "message $i from the corpus generator"
		ina logger -n $IP_B -P 514 -d --rfc3164 -t corpus "legacy message $i"
	done
	cap_stop bsdutils socat <<EOF
B: socat -u UDP-RECV:514,bind=$IP_B /dev/null
A: logger -n $IP_B -P 514 -d --rfc5424 / --rfc3164 (15 each)
EOF
fi

if wanted tftp; then
	mkdir -p "$W/tftproot"
	head -c 120000 /dev/urandom >"$W/tftproot/boot.img"
	bg_b in.tftpd -L -s "$W/tftproot" -a $IP_B:69 -u root
	wait_port "$B" udp 69
	cap_start tftp
	(cd "$W" && ina tftp -m binary $IP_B -c get boot.img)
	cmp "$W/boot.img" "$W/tftproot/boot.img"
	cap_stop tftpd-hpa tftp-hpa <<EOF
B: in.tftpd -L -s DIR -a $IP_B:69
A: tftp -m binary $IP_B -c get boot.img   (120 kB)
EOF
fi

# ---- web and remote shell ------------------------------------------------------
if wanted https_h1 || wanted https_h2 || wanted http_plain; then
	mkdir -p "$W/www" "$W/nginx"
	cp "$W/file.bin" "$W/www/file.bin"
	cat >"$W/nginx.conf" <<EOF
daemon off;
user root; # the files sit in a 0700 temporary directory
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events {}
http {
	access_log off;
	client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
	uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
	server {
		listen $IP_B:8080;
		listen $IP_B:8443 ssl http2;
		listen [$IP6_B]:8443 ssl http2;
		ssl_certificate $W/cert.pem;
		ssl_certificate_key $W/key.pem;
		root $W/www;
	}
}
EOF
	bg_b nginx -c "$W/nginx.conf"
	wait_port "$B" tcp 8443
fi
if wanted https_h1; then
	cap_start https_h1
	ina curl -fsSk --http1.1 -o /dev/null "https://$IP_B:8443/file.bin"
	ina curl -fsSk --http1.1 -o /dev/null "https://[$IP6_B]:8443/file.bin"
	cap_stop nginx-light curl <<EOF
B: nginx (listen 8443 ssl http2, IPv4 and IPv6)
A: curl -k --http1.1 https://$IP_B:8443/file.bin; the same over IPv6   (300 kB each, TLS 1.3)
EOF
fi
if wanted https_h2; then
	cap_start https_h2
	ina curl -fsSk --http2 -o /dev/null "https://$IP_B:8443/file.bin"
	cap_stop nginx-light curl <<EOF
A: curl -k --http2 https://$IP_B:8443/file.bin   (300 kB)
EOF
fi
if wanted http_plain; then
	cap_start http_plain
	ina curl -fsS -o /dev/null "http://$IP_B:8080/file.bin"
	ina curl -fsS -o /dev/null "http://$IP_B:8080/missing"|| true
	cap_stop nginx-light curl <<EOF
A: curl http://$IP_B:8080/file.bin (300 kB); a 404
EOF
fi

if wanted ssh; then
	ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey"
	ssh-keygen -q -t ed25519 -N '' -f "$W/userkey"
	cp "$W/userkey.pub" "$W/authorized_keys"
	mkdir -p /run/sshd
	cat >"$W/sshd_config" <<EOF
Port 2222
ListenAddress $IP_B
HostKey $W/hostkey
AuthorizedKeysFile $W/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $W/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
	bg_b /usr/sbin/sshd -D -e -f "$W/sshd_config"
	wait_port "$B" tcp 2222
	cap_start ssh
	SSHOPT=(-i "$W/userkey" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
	ina ssh "${SSHOPT[@]}" -p 2222 root@$IP_B 'uname -a; ls /' >/dev/null
	ina scp "${SSHOPT[@]}" -P 2222 "$W/file.bin" root@$IP_B:"$W/scp.bin"
	cmp "$W/file.bin" "$W/scp.bin"
	cap_stop openssh-server openssh-client <<EOF
B: sshd -D -f (Port 2222, key authentication)
A: ssh -p 2222 root@$IP_B 'uname -a; ls /'; scp -P 2222 file.bin (300 kB)
EOF
fi

# ---- game-like UDP ---------------------------------------------------------------
if wanted game_udp; then
	cat >"$W/game.py" <<'EOF'
"""Game-like UDP: the client sends 64 input packets a second (24-96 random
bytes), the server answers 30 state packets a second (80-600 random
bytes), for 4 s. argv: role my_ip peer_ip."""
import os, random, socket, sys, time
role, me, peer = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 27015 if role == "server" else 0))
s.setblocking(False)
rate, lo, hi = (30, 80, 600) if role == "server" else (64, 24, 96)
dest = (peer, 27015) if role == "client" else None
end = time.time() + (5 if role == "server" else 4)
while time.time() < end:
    try:
        _, addr = s.recvfrom(2048)
        dest = dest or addr
    except BlockingIOError:
        pass
    if dest:
        s.sendto(os.urandom(random.randint(lo, hi)), dest)
    time.sleep(1.0 / rate)
EOF
	bg_b /usr/bin/python3 "$W/game.py" server $IP_B $IP_A
	sleep 0.3
	cap_start game_udp
	ina /usr/bin/python3 "$W/game.py" client $IP_A $IP_B
	cap_stop python3 <<EOF
B: game.py server (30 packets/s of 80-600 random bytes to the client)
A: game.py client (64 packets/s of 24-96 random bytes to port 27015, 4 s); the script is in tools/corpus/make_nonbt.sh
EOF
fi

# The manifest keeps entries of kinds not remade this time.
{
	echo "# Non-BitTorrent corpus, made by tools/corpus/make_nonbt.sh between two network"
	echo "# namespaces (A $IP_A / $IP6_A, B $IP_B / $IP6_B), captured on A's veth with"
	echo "# tcpdump -s 0 'tcp or udp'. Each entry: file, size, Debian packages, commands."
	if [[ -f $MANIFEST ]]; then
		awk -v new="$TMP_MANIFEST" 'BEGIN { while ((getline l < new) > 0) if (l ~ /^[^ ]/) { split(l, f, ":"); made[f[1]] = 1 } }
			/^#/ { next }
			/^[^ ]/ { split($0, f, ":"); keep = !(f[1] in made) }
			keep { print }' "$MANIFEST"
	fi
	cat "$TMP_MANIFEST"
} >"$W/MANIFEST.all"
mv "$W/MANIFEST.all" "$MANIFEST"
du -sh "$OUT"
