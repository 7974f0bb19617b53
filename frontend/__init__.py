"""llgrad"""
