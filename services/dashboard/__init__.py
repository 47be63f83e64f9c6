"""``herstelbus dashboard``: the ops web dashboard (issue 7). No personal data on any page."""
