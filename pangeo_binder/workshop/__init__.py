"""Workshops: the organiser's file (`config`), and building and pre-warming what it
names (`prewarm`)."""
