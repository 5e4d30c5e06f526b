"""Checks of built images: does a repository still work in the image it gets?"""
