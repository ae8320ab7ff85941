// MailAuth: DKIM signing for outgoing mail; SPF (RFC 7208), DKIM (RFC 6376, RFC 8301,
// RFC 8463) and DMARC (RFC 7489) for inbound mail; the Authentication-Results field (RFC 8601).
//
// No I/O of its own: every DNS query goes through `MailAuthResolver`, which the node
// implements and tests fake. Everything from the network, a message or DNS is treated as
// hostile: header sections, tag-lists, signature counts, h= lists, SPF lookups and macro
// expansions all have limits (`MailAuthLimits`), and nothing reachable from input traps.
//
// Choices worth knowing when reading results:
// - DKIM: rsa-sha1 and unknown algorithms are "permerror" (RFC 8301). RSA keys under 1024 bits
//   are "permerror"; 1024-bit keys are accepted. l= is honoured: the covered octets must
//   verify, and a pass with uncovered content sets `bodyLengthLimited`. An x= in the past is
//   "fail (signature expired)", with no clock-skew allowance; t= is not checked. t=y keys are
//   reported through `testing` and otherwise treated alike. A message with bare LF line ends
//   is handled as its CRLF form.
// - SPF: %{p} expands to "unknown" (RFC 7208 §7.3 allows it), so "ptr" is the only reverse
//   lookup. Only MAIL FROM (or postmaster@HELO for a null reverse-path) is checked, not HELO
//   separately. exp= is looked up only for a top-level "fail".
// - DMARC: no From field, or one without a usable address, is "permerror". Several From
//   fields, or several mailboxes in one, are each evaluated and the strictest outcome kept
//   (RFC 7489 §6.6.1), with `multipleAuthors` set so the SMTP layer can reject outright.
//   Organizational domains come from a small built-in suffix table (see
//   `OrganizationalDomain`), not the full Public Suffix List.
// - Authentication-Results: the caller removes existing fields with its own authserv-id
//   before prepending ours (RFC 8601 §5).
