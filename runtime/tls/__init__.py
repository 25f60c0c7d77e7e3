"""runtime/tls"""
