"""Real-server test harness: each module starts one server on a free loopback port."""
