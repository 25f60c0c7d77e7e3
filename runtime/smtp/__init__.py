"""runtime/smtp: the SMTP wire that mail and the TLS probe share (replies, deadlines, transcript)."""
