"""runtime/mail"""
