"""The one analysis pass per video: shot and dissolve detection, clip spans, keyframes, frame
statistics, camera motion, time segments.
"""
