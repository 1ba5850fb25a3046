# nginx addon make fragment for ngx_http_supportdesk_module.
#
# nginx's ./configure sources $ngx_addon_dir/config.make, when it exists,
# from auto/make ("the addons config.make"), for every --add-module and
# --add-dynamic-module alike, once it has written the compile rules of the
# addons' sources to $NGX_MAKEFILE (objs/Makefile): whatever this file
# appends there is part of objs/Makefile.  POSIX sh, like config; every
# helper variable is prefixed with ngx_sd_.
#
# objs/ngx_http_supportdesk_scripts.c, the embedded Redis scripts (listed in
# config's ngx_module_srcs), is made by objs/Makefile itself: the rule below
# runs util/embed-scripts.sh (which explains the C file it writes) whenever
# a redis/*.lua or the generator is newer.  Editing a script thus only
# regenerates that file and relinks the module.  The list of scripts is read
# here, at configure time: adding or removing a .lua file needs configure
# again (the top Makefile does that by itself).

ngx_sd_scripts_c=$NGX_OBJS/ngx_http_supportdesk_scripts.c
ngx_sd_embed=$ngx_addon_dir/util/embed-scripts.sh

echo " + supportdesk: $ngx_sd_scripts_c made by objs/Makefile from:"

ngx_sd_luas=
for ngx_sd_lua in $ngx_addon_dir/redis/*.lua
do
    if [ -f "$ngx_sd_lua" ]; then
        echo "   + $ngx_sd_lua"
        ngx_sd_luas="$ngx_sd_luas$ngx_cont$ngx_sd_lua"
    fi
done

# a file written for another list of scripts must not look up to date
rm -f $ngx_sd_scripts_c

cat << END                                                    >> $NGX_MAKEFILE

$ngx_sd_scripts_c:	$ngx_sd_embed$ngx_sd_luas
	$ngx_sd_embed $ngx_sd_scripts_c $ngx_addon_dir/redis

END
