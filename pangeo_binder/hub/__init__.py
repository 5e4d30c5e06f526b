"""JupyterHub and BinderHub: the spawn hooks (`hooks`), BinderHub's launch quota counted
in session namespaces (`launch_quota`, mounted alone into BinderHub's pod), and launch
badges (`badge`)."""
