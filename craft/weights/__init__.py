"""Packaged weight files (the LinkRefiner, MIT, NAVER Corp.; see NOTICE)."""
