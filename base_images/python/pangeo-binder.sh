# /etc/profile.d/pangeo-binder.sh: the image's environment first on PATH in login shells.
#
# The image's ENV puts the environment first on PATH, but Debian's /etc/profile sets PATH
# afresh for every login shell (`sh -l`, `bash -l`). JupyterLab's terminal is one: it runs
# `$SHELL -l` (or `sh -l`). Without this file `python` is not found there and `python3` is
# Debian's bare interpreter; /etc/profile sources it after that reset.
#
# The environment is /srv/conda for a conda repository, else /srv/venv. POSIX sh (dash
# reads it too). Sourcing it again changes nothing: the directory is moved to the front,
# never added twice; the other entries keep their order.
_pangeo_binder_env=/srv/venv/bin
if [ -d /srv/conda/bin ]; then
    _pangeo_binder_env=/srv/conda/bin
fi
case ":${PATH-}:" in
    ":${_pangeo_binder_env}:"*) ;;  # already first
    *)
        _pangeo_binder_rest=${PATH:+$PATH:}
        _pangeo_binder_path=$_pangeo_binder_env
        while [ -n "$_pangeo_binder_rest" ]; do
            _pangeo_binder_dir=${_pangeo_binder_rest%%:*}
            _pangeo_binder_rest=${_pangeo_binder_rest#*:}
            if [ "$_pangeo_binder_dir" != "$_pangeo_binder_env" ]; then
                _pangeo_binder_path=$_pangeo_binder_path:$_pangeo_binder_dir
            fi
        done
        PATH=$_pangeo_binder_path
        ;;
esac
export PATH
unset _pangeo_binder_env _pangeo_binder_rest _pangeo_binder_path _pangeo_binder_dir
