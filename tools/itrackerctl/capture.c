/* capture.c - read pcap and pcapng files with libpcap and hand out every
 * record as an Ethernet frame, synthesising the Ethernet header for Linux
 * cooked (SLL, SLL2: `tcpdump -i any`), raw IP, BSD loopback (NULL, LOOP),
 * Cisco HDLC and PPP captures.
 *
 * Kept apart from the BPF code: <pcap/bpf.h> and <linux/bpf.h> both define
 * struct bpf_insn and cannot share a translation unit.
 */
#include <linux/if_ether.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Frames up to 64 KiB (GRO'd captures) plus a synthesised header. */
#define CAPTURE_FRAME_BUF 65600

struct ctl_capture {
	pcap_t *pcap;
	int dlt;
	uint8_t frame[CAPTURE_FRAME_BUF];
};

/* Link types with a header we can replace by Ethernet's, as named in the
 * error for the others. */
#define CAPTURE_LINK_TYPES                                                                         \
	"Ethernet, Linux SLL/SLL2, raw IP, BSD loopback (NULL/LOOP), Cisco HDLC, PPP"

#ifndef DLT_IPV4
#define DLT_IPV4 228
#define DLT_IPV6 229
#endif

static bool link_type_supported(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_NULL:
	case DLT_LOOP:
	case DLT_C_HDLC:
	case DLT_PPP:
	case DLT_PPP_SERIAL:
		return true;
	default:
		return false;
	}
}

/* BSD loopback: a 4-byte address family, host byte order of the capturing
 * machine (NULL) or network byte order (LOOP). IPv6's value differs
 * between BSDs (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS). */
static uint16_t bsd_family_proto(const uint8_t *p, bool network_order)
{
	uint32_t le =
	    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	uint32_t be =
	    (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
	/* A NULL capture from a machine of either byte order: the family
	 * is small, so the order that gives a small number is the right one. */
	uint32_t af = network_order ? be : (le < 0x10000 ? le : be);
	if (af == 2)
		return ETH_P_IP;
	if (af == 24 || af == 28 || af == 30)
		return ETH_P_IPV6;
	return 0;
}

/* PPP protocol numbers (RFC 1661/1332/5072) of the two IP versions. */
static uint16_t ppp_proto(uint16_t proto)
{
	return proto == 0x0021 ? ETH_P_IP : proto == 0x0057 ? ETH_P_IPV6 : 0;
}

/* Turns a captured record into an Ethernet frame in out; returns its length
 * or 0 if the link type's payload is not something the program parses. */
static size_t to_ethernet(int dlt, const uint8_t *pkt, size_t len, uint8_t *out, size_t outcap)
{
	static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
	uint16_t proto;
	size_t hdr;
	switch (dlt) {
	case DLT_EN10MB:
		if (len < ETH_HLEN || len > outcap)
			return 0;
		memcpy(out, pkt, len);
		return len;
	case DLT_LINUX_SLL: /* 16 bytes, protocol at offset 14 */
		if (len < 16)
			return 0;
		proto = (uint16_t)(pkt[14] << 8 | pkt[15]);
		hdr = 16;
		break;
	case DLT_LINUX_SLL2: /* 20 bytes, protocol at offset 0 */
		if (len < 20)
			return 0;
		proto = (uint16_t)(pkt[0] << 8 | pkt[1]);
		hdr = 20;
		break;
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		if (len < 1)
			return 0;
		proto = (pkt[0] >> 4) == 6 ? ETH_P_IPV6 : ETH_P_IP;
		hdr = 0;
		break;
	case DLT_NULL:
	case DLT_LOOP:
		if (len < 4)
			return 0;
		proto = bsd_family_proto(pkt, dlt == DLT_LOOP);
		hdr = 4;
		break;
	case DLT_C_HDLC: /* address, control, Ethernet protocol type */
		if (len < 4)
			return 0;
		proto = (uint16_t)(pkt[2] << 8 | pkt[3]);
		hdr = 4;
		break;
	case DLT_PPP:
	case DLT_PPP_SERIAL: /* [0xff 0x03] protocol (RFC 1662) */
		hdr = len >= 2 && pkt[0] == 0xff && pkt[1] == 0x03 ? 2 : 0;
		if (len < hdr + 2)
			return 0;
		proto = ppp_proto((uint16_t)(pkt[hdr] << 8 | pkt[hdr + 1]));
		hdr += 2;
		break;
	default:
		return 0;
	}
	if (proto == 0 || len - hdr + ETH_HLEN > outcap)
		return 0;
	memcpy(out, macs, 12);
	out[12] = (uint8_t)(proto >> 8);
	out[13] = (uint8_t)proto;
	memcpy(out + ETH_HLEN, pkt + hdr, len - hdr);
	return len - hdr + ETH_HLEN;
}

struct ctl_capture *ctl_capture_open(const char *file, char *err, size_t errlen)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *pcap = pcap_open_offline(file, errbuf);
	if (!pcap) {
		/* libpcap names the file for some failures ("x: No such file")
		 * and not for others ("unknown file format"). */
		size_t flen = strlen(file);
		bool named = strncmp(errbuf, file, flen) == 0 && errbuf[flen] == ':';
		snprintf(err, errlen, "%s%s%s", named ? "" : file, named ? "" : ": ", errbuf);
		return NULL;
	}
	int dlt = pcap_datalink(pcap);
	if (!link_type_supported(dlt)) {
		const char *name = pcap_datalink_val_to_name(dlt);
		const char *desc = pcap_datalink_val_to_description(dlt);
		snprintf(err, errlen,
		         "%s: link type %d (%s%s%s) is not supported; classify "
		         "reads " CAPTURE_LINK_TYPES,
		         file, dlt, name ? name : "unnamed", desc ? ", " : "", desc ? desc : "");
		pcap_close(pcap);
		return NULL;
	}
	struct ctl_capture *cap = malloc(sizeof(*cap));
	if (!cap) {
		snprintf(err, errlen, "out of memory");
		pcap_close(pcap);
		return NULL;
	}
	cap->pcap = pcap;
	cap->dlt = dlt;
	return cap;
}

const char *ctl_capture_linktype(const struct ctl_capture *cap)
{
	const char *name = pcap_datalink_val_to_name(cap->dlt);
	return name ? name : "unknown";
}

int ctl_capture_next(struct ctl_capture *cap, const uint8_t **frame, size_t *len,
                     uint64_t *wire_len)
{
	struct pcap_pkthdr *hdr;
	const u_char *data;
	int rc = pcap_next_ex(cap->pcap, &hdr, &data);
	if (rc == PCAP_ERROR_BREAK)
		return 0;
	if (rc != 1)
		return -1;
	*frame = cap->frame;
	*len = to_ethernet(cap->dlt, data, hdr->caplen, cap->frame, sizeof(cap->frame));
	/* Bytes as the hook would see them: the wire length, with the link
	 * header replaced by Ethernet's. */
	*wire_len = *len ? (uint64_t)hdr->len - hdr->caplen + *len : 0;
	return 1;
}

const char *ctl_capture_error(struct ctl_capture *cap)
{
	return pcap_geterr(cap->pcap);
}

void ctl_capture_close(struct ctl_capture *cap)
{
	if (!cap)
		return;
	pcap_close(cap->pcap);
	free(cap);
}
