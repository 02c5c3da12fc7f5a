"""Many routers from one box: a Nornir inventory, one policy fetch per list, one sync per device."""
